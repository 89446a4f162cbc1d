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

    // MARK: torch's own test table (Fixtures/generate_torch_table.py)

    /// The file made from torch's optimizer test table, read once (a parse takes seconds).
    static let torchTableFile = Result { try GoldenFile(contentsOf: fixtures.appendingPathComponent("torch_table.json")) }
    /// Its cases; none when it cannot be read, which `theTorchTableCoversTheCatalog` reports.
    static let torchTable = (try? torchTableFile.get())?.cases ?? []
    /// Cases known not to match yet, with reasons (Fixtures/known_differences.json).
    static let knownDifferencesFile = Result {
        try KnownDifferences(contentsOf: fixtures.appendingPathComponent("known_differences.json"))
    }
    static let knownDifferences = (try? knownDifferencesFile.get()) ?? .none

    /// The threaded configuration of the replays: two threads, no serial threshold, 64-element
    /// chunks, so that the table's 85-element cases run as two chunks on two threads.
    static func threaded(_ backend: Backend, isa: InstructionSet = .best, tally: LaunchTally? = nil) throws -> Execution {
        try Execution(threads: 2, backend: backend, instructionSet: isa, serialThreshold: 0, chunkElements: 64,
                      launchTally: tally)
    }

    @Test func theTorchTableCoversTheCatalog() throws {
        let file = try Self.torchTableFile.get()
        _ = try Self.knownDifferencesFile.get()
        #expect(Set(file.cases.map(\.optimizer)) == torchOptimizers)
        // Every optimizer stepped by gradients has cases with NaN and infinite gradients.
        let gradientDriven = Set(OptimizerCatalog.entries.filter { $0.reference == .torch && $0.engine != .closure }
            .map(\.replays))
        let nonFinite = file.cases.filter { $0.steps.contains { $0.grads?.contains(where: \.hasNonFiniteValue) == true } }
        #expect(Set(nonFinite.map(\.optimizer)) == gradientDriven)
    }

    /// Each optimizer's cases from torch's table, on every catalog entry that replays them, in
    /// every configuration; a case may be unsupported only with its generator's reason, and
    /// fail only where known_differences.json lists it.
    @Test(arguments: Set(GoldenReplayTests.torchTable.map(\.optimizer)).sorted())
    func torchTableMatchesTorch(optimizer: String) throws {
        let cases = Self.torchTable.filter { $0.optimizer == optimizer }
        for golden in cases {
            for entry in OptimizerCatalog.entries(replaying: optimizer) {
                for configuration in Self.configurations {
                    let execution = try Self.execution(configuration)
                    let outcome = Self.knownDifferences.judge(golden.id, GoldenReplayer(
                        execution: execution, implementation: configuration.implementation).replay(golden, on: entry))
                    switch outcome {
                    case .pass, .knownDifference: continue
                    case .unsupported(let reason) where reason == golden.unsupported: continue
                    default: Issue.record("\(golden.id) on \(entry) with \(configuration): \(outcome)")
                    }
                }
            }
        }
    }

    /// The cases with NaN and infinite gradients on every instruction-set tier this CPU runs,
    /// threaded: NaN positions must match torch's exactly, in tails and across chunks.
    @Test(arguments: InstructionSet.supported)
    func nonFiniteGradientsMatchTorchOnEveryTier(isa: InstructionSet) throws {
        let cases = Self.torchTable.filter { $0.steps.contains { $0.grads?.contains(where: \.hasNonFiniteValue) == true } }
        #expect(cases.count >= 100)
        for golden in cases {
            for implementation in Implementation.allCases {
                let outcome = Self.knownDifferences.judge(golden.id, GoldenReplayer(
                    execution: try Self.threaded(.openMP, isa: isa), implementation: implementation).replay(golden))
                switch outcome {
                case .pass, .knownDifference: continue
                case .unsupported(let reason) where reason == golden.unsupported: continue
                default: Issue.record("\(golden.id) on \(isa), \(implementation): \(outcome)")
                }
            }
        }
    }

    /// The threaded configuration crosses threads, chunk boundaries and vector tails on a
    /// reference case, where the default serial thresholds keep every launch of the small
    /// reference cases on one thread. Which thread claims which chunk is the scheduler's
    /// choice: OpenMP's threads wait spinning between launches, so the case is replayed (for up
    /// to a minute) until some launch was split between two threads. Dispatch hands each launch
    /// to two threads too, but its second thread mostly wakes after a launch this short is done
    /// (from none to 4 % of such launches were split in the command-line replays here).
    @Test(arguments: [Backend.dispatch, .openMP], Implementation.allCases)
    func theThreadedReplayCrossesThreadsChunksAndTails(backend: Backend, implementation: Implementation) throws {
        let golden = try #require(Self.torchTable.first { $0.id == "Adam/amsgrad/float32" })
        let serialTally = LaunchTally()
        let defaults = try Execution(threads: 2, backend: backend, launchTally: serialTally)
        guard case .pass = GoldenReplayer(execution: defaults, implementation: implementation).replay(golden) else {
            Issue.record("\(golden.id) fails with the default thresholds")
            return
        }
        #expect(serialTally.counts.launches > 0 && serialTally.counts.threadedLaunches == 0)

        let tally = LaunchTally()
        let replayer = GoldenReplayer(execution: try Self.threaded(backend, tally: tally), implementation: implementation)
        var replays = 0
        let deadline = ContinuousClock.now + .seconds(60)
        repeat {
            let outcome = replayer.replay(golden)
            guard case .pass = outcome else {
                Issue.record("\(golden.id) fails threaded: \(outcome)")
                return
            }
            replays += 1
        } while backend == .openMP && tally.counts.sharedLaunches == 0 && ContinuousClock.now < deadline
        let counts = tally.counts
        #expect(counts.threadedLaunches > 0, "\(counts)")
        #expect(counts.chunks > counts.launches, "\(counts)")
        #expect(counts.boundariesInsideTensors > 0, "\(counts)")
        #expect(counts.piecesEndingInPartialVectors > 0, "\(counts)")
        if backend == .openMP {
            #expect(counts.sharedLaunches > 0, "no launch was split between threads in \(replays) replays: \(counts)")
        }
    }

    /// torch's table's inputs it must refuse: each is refused here too, or unsupported with the
    /// reason the file gives (a Python-API check, a Tensor-valued option, complex parameters).
    @Test func torchTableRefusalsAreRefused() throws {
        let checks = try Self.torchTableFile.get().errorChecks
        let checked = checks.filter { $0.unsupported == nil }
        #expect(checked.count >= 35)
        for check in checks {
            let outcome = Self.knownDifferences.judge(check.id, check.check(execution: try Execution(threads: 1)))
            switch outcome {
            case .pass, .knownDifference: continue
            case .unsupported(let reason) where reason == check.unsupported: continue
            default: Issue.record("\(check.id): \(outcome)")
            }
        }
    }

    /// A group key that is no option of the optimizer (nor of its reference) is replayed as
    /// ignored and named, not dropped silently; a case its file marks unsupported is reported
    /// with the file's reason.
    @Test func anIgnoredOptionIsNamedAndAMarkedCaseIsUnsupported() throws {
        let text = #"""
            {"cases": [
              {"id": "a", "optimizer": "SGD", "dtype": "float32", "groups": [{"params": [0], "options": {"lr": 0.5, "foreach": false, "frobnicate": 2}}],
               "params": [{"shape": [2], "data": [1, 2]}], "steps": [{"grads": [[1, 1]], "params": [[0.5, 1.5]]}], "state": [{}]},
              {"id": "b", "optimizer": "SGD", "dtype": "float32", "groups": [{"params": [0], "options": {"lr": 0.1}}], "unsupported": "a reason",
               "params": [{"shape": [2], "data": [1, 2]}], "steps": [], "state": [{}]}]}
            """#
        let file = try GoldenFile(data: Data(text.utf8))
        let replayer = GoldenReplayer(execution: try Execution(threads: 1), implementation: .multiTensor)
        let sgd = try #require(OptimizerCatalog.entry(named: "SGD"))
        #expect(replayer.replay(file.cases[0]) == .pass(maxError: 0))
        #expect(replayer.ignoredOptions(file.cases[0], on: sgd) == ["frobnicate=2"])
        #expect(replayer.replay(file.cases[1]) == .unsupported("a reason"))
    }

    /// A listed known difference is reported as such while it fails, and fails once it passes.
    @Test func aKnownDifferenceThatPassesFails() {
        let known = KnownDifferences(reasons: ["x": "why"])
        #expect(known.judge("x", .fail("step=1")) == .knownDifference("why (step=1)"))
        guard case .fail = known.judge("x", .pass(maxError: 0)) else {
            Issue.record("a passing known difference did not fail")
            return
        }
        #expect(known.judge("y", .fail("step=1")) == .fail("step=1"))
    }

    // MARK: Fidelity cases (Fixtures/generate_fidelity_cases.py)

    /// The file of cases where this library once went another way than torch, read once.
    static let fidelityFile = Result { try GoldenFile(contentsOf: fixtures.appendingPathComponent("fidelity_cases.json")) }
    /// Its trajectories and option checks; none when it cannot be read, which
    /// `theFidelityFixtureCoversEveryTorchOptimizer` reports.
    static let fidelityCases = (try? fidelityFile.get())?.cases ?? []
    static var fidelityChecks: [GoldenErrorCase] { (try? fidelityFile.get())?.errorChecks ?? [] }

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
    @Test(arguments: GoldenReplayTests.fidelityChecks.map(\.id))
    func optionCheckMatchesTorch(id: String) throws {
        let check = try #require(Self.fidelityChecks.first { $0.id == id })
        let execution = try Execution(threads: 1)
        #expect(check.check(execution: execution) == .pass(maxError: 0), "\(check.check(execution: execution))")
        if let wording = check.torchWording, let refusal = try check.refusal(execution: execution) {
            #expect(refusal.hasPrefix(wording), "torch says \"\(wording)\", this library \"\(refusal)\"")
        }
    }

    @Test func theFidelityFixtureCoversEveryTorchOptimizer() throws {
        let file = try Self.fidelityFile.get()
        #expect(Set(file.errorChecks.map(\.optimizer)) == torchOptimizers)
        #expect(Set(file.errorChecks.map(\.id)).count == file.errorChecks.count, "every option check has its own name")
        #expect(file.cases.count >= 10)
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
