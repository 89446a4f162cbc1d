import Foundation
import Optim
import OptimGolden
import Testing

/// Replays the reference trajectories (PyTorch 2.15's, and those of the reference
/// implementations of the optimizers torch lacks) on every catalog optimizer that replays
/// them, on every thread count, backend and implementation the acceptance criteria name.
@Suite struct GoldenReplayTests {
    /// The catalog's optimizers stepped by gradients (LBFGS, driven by a closure, replays its
    /// cases in `randomCasesMatchTorch` and LBFGSTests).
    static let entries = OptimizerCatalog.entries.filter { $0.engine != .closure }
    static let implemented = Set(entries.map(\.replays))
    static let files = ["optimizers.json", "beyond_torch.json"].map {
        try! GoldenFile(contentsOf: fixtures.appendingPathComponent($0))
    }
    static let cases = files.flatMap(\.cases).filter { implemented.contains($0.optimizer) }

    static let configurations: [(threads: Int, backend: Backend, implementation: Implementation)] =
        [1, 2].flatMap { threads in
            [Backend.dispatch, .openMP].flatMap { backend in
                Implementation.allCases.map { (threads, backend, $0) }
            }
        }

    /// A configuration's execution with no serial threshold and chunks of 16 elements, so that
    /// the small reference cases cross threads, chunk boundaries and vector tails.
    static func execution(_ configuration: (threads: Int, backend: Backend, implementation: Implementation)) throws
        -> Execution {
        try Execution(threads: configuration.threads, backend: configuration.backend, serialThreshold: 0,
                      chunkElements: 16)
    }

    @Test func theFixturesHoldCasesForEveryCatalogOptimizerAndDtype() {
        #expect(Set(Self.cases.map(\.optimizer)) == Self.implemented)
        #expect(Set(Self.cases.map(\.dtype)) == Set(DType.allCases))
        #expect(Self.cases.count >= 30)
    }

    /// Each case on each catalog optimizer that replays it (the Swift-rule Adam replays Adam's).
    @Test(arguments: GoldenReplayTests.cases.map(\.id))
    func replayMatchesTheReference(id: String) throws {
        let golden = try #require(Self.cases.first { $0.id == id })
        for entry in OptimizerCatalog.entries(replaying: golden.optimizer) {
            for configuration in Self.configurations {
                let execution = try Self.execution(configuration)
                let outcome = GoldenReplayer(execution: execution, implementation: configuration.implementation)
                    .replay(golden, on: entry)
                guard case .pass = outcome else {
                    Issue.record("\(id) on \(entry) with \(configuration): \(outcome)")
                    return
                }
            }
        }
    }

    /// Random cases made with torch by Fixtures/generate_random_cases.py: options, shapes,
    /// dtypes, groups, step counts, missing and sparse gradients, and LBFGS on Rosenbrock of 2
    /// to 64 dimensions (whose trajectories follow torch's dot-product and sum orders to the
    /// last bit), in every configuration.
    @Test func randomCasesMatchTorch() throws {
        let file = try GoldenFile(contentsOf: fixtures.appendingPathComponent("random_cases.json"))
        #expect(file.cases.count >= 150)
        #expect(Set(file.cases.map(\.optimizer)).isSuperset(of: Self.implemented.intersection(torchOptimizers)))
        for configuration in Self.configurations {
            let execution = try Self.execution(configuration)
            let replayer = GoldenReplayer(execution: execution, implementation: configuration.implementation)
            for golden in file.cases {
                let outcome = replayer.replay(golden)
                guard case .pass = outcome else {
                    Issue.record("\(golden.id) with \(configuration): \(outcome)")
                    continue
                }
            }
        }
    }

    /// torch.optim.swa_utils.AveragedModel's SWA and EMA averages, in every configuration.
    @Test func weightAveragesMatchTorch() throws {
        let averaging = Self.files.flatMap(\.cases).filter { $0.steps.contains { $0.setParams != nil } }
        #expect(averaging.count >= 12)
        #expect(Set(averaging.map(\.dtype)) == Set(DType.allCases))
        for configuration in Self.configurations {
            let execution = try Self.execution(configuration)
            let replayer = GoldenReplayer(execution: execution, implementation: configuration.implementation)
            for golden in averaging {
                let outcome = replayer.replay(golden)
                guard case .pass = outcome else {
                    Issue.record("\(golden.id) with \(configuration): \(outcome)")
                    continue
                }
            }
        }
    }

    /// The replay must be able to fail: the same case with a changed option or a changed
    /// reference value is reported as a failure.
    @Test func aWrongOptionOrReferenceValueFails() throws {
        let data = try Data(contentsOf: fixtures.appendingPathComponent("optimizers.json"))
        var root = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        var cases = root["cases"] as! [[String: Any]]
        let index = cases.firstIndex { $0["id"] as? String == "Adam/lr=0.01,amsgrad=True/float64" }!
        let original = cases[index]

        var changedOption = original
        var groups = changedOption["groups"] as! [[String: Any]]
        var options = groups[0]["options"] as! [String: Any]
        options["amsgrad"] = false
        groups[0]["options"] = options
        changedOption["groups"] = groups

        var changedValue = original
        var steps = changedValue["steps"] as! [[String: Any]]
        var params = steps[5]["params"] as! [[Double]]
        params[1][3] += 1e-9
        steps[5]["params"] = params
        changedValue["steps"] = steps

        for changed in [changedOption, changedValue] {
            cases = [changed]
            root["cases"] = cases
            let file = try GoldenFile(data: JSONSerialization.data(withJSONObject: root))
            let outcome = GoldenReplayer(execution: try Execution(threads: 1), implementation: .multiTensor)
                .replay(file.cases[0])
            guard case .fail = outcome else {
                Issue.record("a changed case still passed: \(outcome)")
                continue
            }
        }
    }

    /// What torch, and the reference implementations of the optimizers torch lacks, refuse.
    @Test func optionsTheReferencesRefuseAreRefused() throws {
        let checks = try ["errors.json", "beyond_torch.json"].flatMap {
            try GoldenErrorCase.load(data: Data(contentsOf: fixtures.appendingPathComponent($0)))
        }
        #expect(checks.count >= 30)
        for check in checks {
            let outcome = check.check(execution: try Execution(threads: 1))
            #expect(outcome == .pass(maxError: 0), "\(check.id): \(outcome)")
        }
    }

    // MARK: Fidelity cases (Fixtures/generate_fidelity_cases.py)

    static let fidelityData = try! Data(contentsOf: fixtures.appendingPathComponent("fidelity_cases.json"))
    static let fidelityCases = try! GoldenFile(data: fidelityData).cases
    /// Parsed once: the option checks hold the options as JSON values, which are not Sendable.
    nonisolated(unsafe) static let fidelityChecks = try! GoldenErrorCase.load(data: fidelityData)
    static let fidelityErrorIDs = fidelityChecks.map(\.id)

    /// Each trajectory torch made where this library once went another way (float16 SGD against
    /// the fused kernel, Muon's Newton–Schulz roundings, LBFGS's evaluation budget, Adagrad's
    /// state before the first update), on every catalog optimizer that replays it, in every
    /// configuration.
    @Test(arguments: GoldenReplayTests.fidelityCases.map(\.id))
    func fidelityCaseMatchesTorch(id: String) throws {
        let golden = try #require(Self.fidelityCases.first { $0.id == id })
        let entries = OptimizerCatalog.entries(replaying: golden.optimizer)
        #expect(!entries.isEmpty, "\(golden.optimizer) is in the catalog")
        for entry in entries {
            for configuration in Self.configurations {
                let outcome = GoldenReplayer(execution: try Self.execution(configuration),
                                             implementation: configuration.implementation).replay(golden, on: entry)
                guard case .pass = outcome else {
                    Issue.record("\(id) on \(entry) with \(configuration): \(outcome)")
                    return
                }
            }
        }
    }

    /// Every option value torch 2.15's constructors refuse (and values next to them that they
    /// accept) is refused (accepted) here, with torch's message at the start of this library's.
    @Test(arguments: GoldenReplayTests.fidelityErrorIDs)
    func optionCheckMatchesTorch(id: String) throws {
        let check = try #require(Self.fidelityChecks.first { $0.id == id })
        let execution = try Execution(threads: 1)
        #expect(check.check(execution: execution) == .pass(maxError: 0), "\(check.check(execution: execution))")
        if let wording = check.torchWording, let refusal = try check.refusal(execution: execution) {
            #expect(refusal.hasPrefix(wording), "torch says \"\(wording)\", this library \"\(refusal)\"")
        }
    }

    @Test func theFidelityFixtureCoversEveryTorchOptimizer() {
        let checks = Self.fidelityChecks
        #expect(Set(checks.map(\.optimizer)) == torchOptimizers)
        #expect(Set(checks.map(\.id)).count == checks.count, "every option check has its own name")
        #expect(Self.fidelityCases.count >= 10)
    }

    @Test func nonFiniteNumbersAsPythonWritesThemAreRead() throws {
        let text = #"{"cases": [{"id": "x NaN", "optimizer": "SGD", "dtype": "float32", "groups": [{"params": [0], "options": {"lr": 0.1}}], "params": [{"shape": [3], "data": [NaN, Infinity, -Infinity]}], "steps": [], "state": [{}]}]}"#
        let file = try GoldenFile(data: Data(text.utf8))
        let values = file.cases[0].initialParams[0]
        #expect(values[0].isNaN && values[1] == .infinity && values[2] == -.infinity)
        #expect(file.cases[0].id == "x NaN")
    }

    /// Long decimals read as the doubles they denote (JSONSerialization alone rounds some of
    /// them wrongly on Linux).
    @Test func longDecimalsAreReadExactly() throws {
        let text = #"{"cases": [{"id": "x", "optimizer": "SGD", "dtype": "float64", "groups": [{"params": [0], "options": {"lr": 0.1}}], "params": [{"shape": [3], "data": [0.09000000000000001, 0.04999775066971779, -1.2815610200467566]}], "steps": [], "state": [{}]}]}"#
        let file = try GoldenFile(data: Data(text.utf8))
        #expect(file.cases[0].initialParams[0] == [0.09000000000000001, 0.04999775066971779, -1.2815610200467566])
    }
}

/// The optimizers of torch.optim 2.15, whose reference files come from torch itself.
let torchOptimizers = Set(OptimizerCatalog.entries.filter { $0.reference == .torch }.map(\.replays))
