import Foundation
import Optim
import OptimGolden
import Testing

/// LBFGS: convergence, determinism, state, refusals, and PyTorch's reference trajectories.
@Suite struct LBFGSTests {
    /// A closure that evaluates `objective` on the parameters (concatenated) and sets their
    /// gradients, counting its calls.
    final class Objective {
        let parameters: [Tensor]
        let function: GoldenObjective.Function
        var calls = 0

        init(_ parameters: [Tensor], _ function: @escaping GoldenObjective.Function) {
            self.parameters = parameters
            self.function = function
        }

        func callAsFunction() throws -> Double {
            calls += 1
            let (loss, gradient) = function(parameters.flatMap { $0.toArray() })
            var offset = 0
            for parameter in parameters {
                parameter.grad = try Tensor(Array(gradient[offset..<offset + parameter.count]),
                                            shape: parameter.shape, dtype: parameter.dtype)
                offset += parameter.count
            }
            return loss
        }
    }

    static func rosenbrockStart(_ count: Int) -> [Double] { (0..<count).map { $0 % 2 == 0 ? -1.2 : 1 } }

    @Test(arguments: [DType.float64, .float32])
    func strongWolfeConvergesOnRosenbrock(dtype: DType) throws {
        let start = Self.rosenbrockStart(10)
        let parameters = [try Tensor(Array(start[0..<4]), dtype: dtype), try Tensor(Array(start[4...]), shape: [2, 3], dtype: dtype)]
        let lbfgs = try LBFGS(parameters, options: .init(lineSearch: .strongWolfe), execution: Execution(threads: 2))
        let objective = Objective(parameters, GoldenObjective.rosenbrock)
        var loss = Double.infinity
        for _ in 0..<15 { loss = try lbfgs.step { try objective() } }
        let final = GoldenObjective.rosenbrock(parameters.flatMap { $0.toArray() }).loss
        #expect(final < (dtype == .float64 ? 1e-10 : 1e-5), "loss \(final) after 15 steps (last step returned \(loss))")
        for value in parameters.flatMap({ $0.toArray() }) {
            #expect(abs(value - 1) < (dtype == .float64 ? 1e-5 : 1e-2))
        }
    }

    @Test func aFixedStepConvergesOnAQuadratic() throws {
        let targets: [Double] = [3, -1, 0.5, 2, -4]
        let curvatures: [Double] = [1, 10, 0.5, 3, 7]
        let x = try Tensor([Double](repeating: 0, count: 5), dtype: .float64)
        // Tolerances that do not stop the iterations before the minimum.
        let lbfgs = try LBFGS([x], options: .init(toleranceGrad: 1e-12, toleranceChange: 0), execution: Execution(threads: 1))
        let objective = Objective([x]) { x in
            let loss = zip(zip(x, targets), curvatures).reduce(0) { $0 + $1.1 * ($1.0.0 - $1.0.1) * ($1.0.0 - $1.0.1) }
            return (loss, zip(zip(x, targets), curvatures).map { 2 * $1 * ($0.0 - $0.1) })
        }
        for _ in 0..<3 { try lbfgs.step { try objective() } }
        for (value, target) in zip(x.toArray(), targets) { #expect(abs(value - target) < 1e-9) }
    }

    /// The whole step (line search, memory, state) gives the same bits on every thread count,
    /// backend and tier, for parameters that span several reduction blocks.
    @Test func aStepGivesTheSameBitsOnEveryConfiguration() throws {
        func run(_ execution: Execution, lineSearch: LBFGS.LineSearch) throws -> [[UInt8]] {
            let start = Self.rosenbrockStart(4100)
            let parameters = [try Tensor(Array(start[0..<2100])), try Tensor([start[2100]], dtype: .float32),
                              try Tensor(Array(start[2101...]))]
            let lbfgs = try LBFGS(parameters, options: .init(maxIter: 6, lineSearch: lineSearch), execution: execution)
            let objective = Objective(parameters, GoldenObjective.rosenbrock)
            for _ in 0..<2 { try lbfgs.step { try objective() } }
            let state = try #require(lbfgs.state(for: parameters[0]))
            let direction = try #require(state["d"]), previousGradient = try #require(state["prev_flat_grad"])
            let t = try #require(state.values["t"]), hessianDiagonal = try #require(state.values["H_diag"])
            return parameters.map(bytes(of:)) + [bytes(of: direction), bytes(of: previousGradient)]
                + [withUnsafeBytes(of: t) { Array($0) }, withUnsafeBytes(of: hessianDiagonal) { Array($0) }]
        }
        for lineSearch in LBFGS.LineSearch.allCases {
            let reference = try run(Execution(threads: 1, backend: .serial, instructionSet: .baseline), lineSearch: lineSearch)
            for threads in [2, 3, 8] {
                for backend in [Backend.dispatch, .openMP] {
                    for isa in InstructionSet.supported {
                        let execution = try Execution(threads: threads, backend: backend, instructionSet: isa,
                                                      serialThreshold: 0, chunkElements: [1, 700, 4096][threads % 3])
                        #expect(try run(execution, lineSearch: lineSearch) == reference,
                                "\(lineSearch): \(threads) threads, \(backend), \(isa)")
                    }
                }
            }
        }
    }

    @Test func stateIsKeptOnTheFirstParameterWithTorchsKeys() throws {
        let a = try Tensor([-1.2, 1], dtype: .float64), b = try Tensor([-1.2, 1], dtype: .float64)
        let lbfgs = try LBFGS([a, b], options: .init(maxIter: 4), execution: Execution(threads: 1))
        #expect(lbfgs.state(for: a) == nil)
        let objective = Objective([a, b], GoldenObjective.rosenbrock)
        let loss = try lbfgs.step { try objective() }
        #expect(loss == GoldenObjective.rosenbrock(Self.rosenbrockStart(4)).loss)
        let state = try #require(lbfgs.state(for: a))
        #expect(lbfgs.state(for: b) == nil)
        #expect(state.values["func_evals"] == Double(objective.calls))
        #expect(state.values["n_iter"] == 4 && state.step == 4)
        #expect(Set(state.values.keys) == ["func_evals", "n_iter", "t", "H_diag", "prev_loss"])
        #expect(Set(state.tensors.keys) == ["d", "prev_flat_grad"])
        #expect(try #require(state["d"]).shape == [4] && #require(state["prev_flat_grad"]).dtype == .float64)
        #expect(objective.calls == 4)  // one evaluation, then one after each iteration but the last
    }

    @Test func aZeroGradientEndsTheStepAfterOneEvaluation() throws {
        let x = try Tensor([1, 1, 1], dtype: .float64)
        let lbfgs = try LBFGS([x], execution: Execution(threads: 1))
        let objective = Objective([x], GoldenObjective.rosenbrock)
        #expect(try lbfgs.step { try objective() } == 0)
        #expect(objective.calls == 1)
        #expect(x.toArray() == [1, 1, 1])
        let state = try #require(lbfgs.state(for: x))
        #expect(state.values["func_evals"] == 1 && state.values["n_iter"] == 0 && state.tensors.isEmpty)
    }

    /// Maximizing −f takes exactly the steps of minimizing f; the returned loss is the
    /// closure's own.
    @Test(arguments: LBFGS.LineSearch.allCases)
    func maximizingTheNegativeFollowsTheSamePath(lineSearch: LBFGS.LineSearch) throws {
        let minimized = try Tensor(Self.rosenbrockStart(6), dtype: .float64)
        let maximized = try Tensor(Self.rosenbrockStart(6), dtype: .float64)
        let minimizer = try LBFGS([minimized], options: .init(lineSearch: lineSearch), execution: Execution(threads: 1))
        let maximizer = try LBFGS([maximized], options: .init(lineSearch: lineSearch, maximize: true),
                                  execution: Execution(threads: 1))
        let down = Objective([minimized], GoldenObjective.rosenbrock)
        let up = Objective([maximized]) { x in
            let (loss, gradient) = GoldenObjective.rosenbrock(x)
            return (-loss, gradient.map { -$0 })
        }
        for _ in 0..<3 {
            let lossDown = try minimizer.step { try down() }
            let lossUp = try maximizer.step { try up() }
            #expect(lossUp == -lossDown)
            #expect(bytes(of: maximized) == bytes(of: minimized))
        }
        #expect(up.calls == down.calls)
    }

    @Test func aThrowingClosureInTheLineSearchLeavesTheLastIterate() throws {
        struct Stop: Error {}
        let x = try Tensor(Self.rosenbrockStart(4), dtype: .float64)
        let lbfgs = try LBFGS([x], options: .init(lineSearch: .strongWolfe), execution: Execution(threads: 1))
        let objective = Objective([x], GoldenObjective.rosenbrock)
        #expect(throws: Stop.self) {
            try lbfgs.step {
                if objective.calls == 1 { throw Stop() }  // the first trial of the line search
                return try objective()
            }
        }
        #expect(x.toArray() == Self.rosenbrockStart(4))
    }

    @Test func defaultsAndTheDerivedEvaluationLimit() throws {
        let options = LBFGS.Options()
        #expect(options.lr == 1 && options.maxIter == 20 && options.maxEval == nil)
        #expect(options.toleranceGrad == 1e-7 && options.toleranceChange == 1e-9 && options.historySize == 100)
        #expect(options.lineSearch == .none && !options.maximize)
        for (maxIter, maxEval) in [(20, 25), (7, 8), (3, 3), (1, 1)] {
            let lbfgs = try LBFGS([try Tensor([1])], options: .init(maxIter: maxIter), execution: Execution(threads: 1))
            #expect(lbfgs.paramGroups[0].options.maxEval == maxEval)
        }
    }

    @Test func badOptionsGroupsAndCallsAreRefused() throws {
        let x = try Tensor([1, 2])
        let execution = try Execution(threads: 1)
        let badOptions: [LBFGS.Options] = [
            .init(lr: -1), .init(lr: .nan), .init(maxIter: 0), .init(maxEval: 0), .init(toleranceGrad: .nan),
            .init(toleranceChange: .infinity), .init(historySize: 0),
        ]
        for options in badOptions {
            #expect(throws: OptimError.self, "\(options)") { try LBFGS([x], options: options, execution: execution) }
        }
        // A negative tolerance turns its stopping test off, in torch as here.
        _ = try LBFGS([x], options: .init(toleranceGrad: -1, toleranceChange: -1), execution: execution)
        #expect(throws: OptimError.self) {
            try LBFGS(groups: [.init([x]), .init([try Tensor([3])])], execution: execution)
        }
        #expect(throws: OptimError.self) { try LBFGS([], execution: execution) }
        #expect(throws: OptimError.self) { try LBFGS([x, x], execution: execution) }
        #expect(throws: OptimError.self) { try LBFGS([x, try Tensor([1], dtype: .float16)], execution: execution) }

        let lbfgs = try LBFGS([x], execution: execution)
        x.grad = try Tensor([1, 1])
        #expect(throws: OptimError.self) { try lbfgs.step() }
        #expect(x.toArray() == [1, 2])
        #expect(throws: OptimError.self) { try lbfgs.setOptions(.init(), group: 1) }
        #expect(throws: OptimError.self) { try lbfgs.setOptions(.init(historySize: -3), group: 0) }
        #expect(lbfgs.paramGroups[0].options.historySize == 100)
        x.grad = try Tensor([1, 1, 1])
        #expect(throws: OptimError.self) { try lbfgs.step { 0 } }
        #expect(x.toArray() == [1, 2])
    }

    // MARK: PyTorch's reference trajectories

    /// The fixture's LBFGS cases; none when it cannot be read, which the first test reports.
    static let cases = ((try? GoldenFile(contentsOf: fixtures.appendingPathComponent("optimizers.json")))?.cases ?? [])
        .filter { $0.optimizer == "LBFGS" }

    @Test func theFixtureHoldsClosureDrivenCases() throws {
        _ = try GoldenFile(contentsOf: fixtures.appendingPathComponent("optimizers.json"))
        #expect(Self.cases.count >= 3)
        #expect(Self.cases.allSatisfy { $0.objective == "rosenbrock" })
    }

    @Test(arguments: LBFGSTests.cases.map(\.id))
    func replayMatchesTorch(id: String) throws {
        let golden = try #require(Self.cases.first { $0.id == id })
        for threads in [1, 2] {
            for backend in [Backend.dispatch, .openMP] {
                for isa in InstructionSet.supported {
                    let execution = try Execution(threads: threads, backend: backend, instructionSet: isa)
                    let outcome = GoldenReplayer(execution: execution, implementation: .multiTensor).replay(golden)
                    guard case .pass = outcome else {
                        Issue.record("\(id) with \(threads) threads, \(backend), \(isa): \(outcome)")
                        return
                    }
                }
            }
        }
    }

    /// The replay can fail: a changed evaluation count, loss or option is reported, and an
    /// objective the replayer does not know is skipped with the reason.
    @Test func aChangedCaseFailsAndAnUnknownObjectiveIsSkipped() throws {
        let data = try Data(contentsOf: fixtures.appendingPathComponent("optimizers.json"))
        var root = try #require(JSONSerialization.jsonObject(with: data) as? [String: Any])
        let original = try #require((root["cases"] as? [[String: Any]])?.first {
            $0["id"] as? String == "LBFGS/rosenbrock,line_search_fn=strong_wolfe/float64"
        })
        func changed(_ change: (inout [String: Any]) throws -> Void) throws -> ReplayOutcome {
            var edited = original
            try change(&edited)
            root["cases"] = [edited]
            let file = try GoldenFile(data: JSONSerialization.data(withJSONObject: root))
            return GoldenReplayer(execution: try Execution(threads: 1), implementation: .multiTensor).replay(file.cases[0])
        }
        func step<Value>(_ key: String, _ transform: @escaping (Value) -> Value) -> (inout [String: Any]) throws -> Void {
            { edited in
                var steps = try #require(edited["steps"] as? [[String: Any]])
                steps[0][key] = transform(try #require(steps[0][key] as? Value))
                edited["steps"] = steps
            }
        }
        func option(_ key: String, _ value: Any) -> (inout [String: Any]) throws -> Void {
            { edited in
                var groups = try #require(edited["groups"] as? [[String: Any]])
                var options = try #require(groups[0]["options"] as? [String: Any])
                options[key] = value
                groups[0]["options"] = options
                edited["groups"] = groups
            }
        }
        let failures: [(String, (inout [String: Any]) throws -> Void)] = [
            ("evaluations", step("evaluations") { (count: Int) in count + 1 }),
            ("loss", step("loss") { (loss: Double) in loss * (1 + 1e-6) }),
            ("option", option("history_size", 2)),
        ]
        for (what, change) in failures {
            let outcome = try changed(change)
            guard case .fail = outcome else {
                Issue.record("a changed \(what) still gave \(outcome)")
                continue
            }
        }
        // A key LBFGS does not define is ignored, as torch ignores it in a parameter group.
        let extraKey = try changed(option("momentum", 0.9))
        guard case .pass = extraKey else {
            Issue.record("a group key LBFGS does not define gave \(extraKey)")
            return
        }
        let unknown = try changed { $0["objective"] = "beale" }
        #expect(unknown == .skip("objective 'beale' is not known to this replayer"))
    }

    /// torch accepts any `line_search_fn` when the optimizer is built and refuses all but
    /// "strong_wolfe" at the first step; this library refuses them when built, and the error
    /// check counts that as agreeing with torch.
    @Test func theErrorFileAgreesOnLBFGSOptions() throws {
        let data = try Data(contentsOf: fixtures.appendingPathComponent("errors.json"))
        let checks = try GoldenErrorCase.load(data: data).filter { $0.optimizer == "LBFGS" }
        #expect(!checks.isEmpty)
        for check in checks {
            #expect(check.check(execution: try Execution(threads: 1)) == .pass(maxError: 0), "\(check.id)")
        }
    }
}
