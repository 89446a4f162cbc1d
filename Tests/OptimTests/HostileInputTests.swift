import Dispatch
import Foundation
import Optim
import Testing

/// Inputs a hostile or careless caller can give: each once crashed the process, and each now
/// gets an error (or a defined result) and changes nothing.
@Suite struct HostileInputTests {
    /// torch's default `max_eval` is `max_iter * 5 // 4`: for a huge `max_iter` it saturates
    /// instead of overflowing, from the options and from a state dict.
    @Test func aHugeMaxIterDoesNotOverflow() throws {
        let x = try Tensor([1.0, 2.0], dtype: .float64)
        let lbfgs = try LBFGS([x], options: .init(maxIter: .max))
        #expect(lbfgs.paramGroups[0].options.maxEval == .max)
        var dict = lbfgs.stateDict()
        dict.paramGroups[0]["max_iter"] = .number(4e18)
        dict.paramGroups[0]["max_eval"] = .null
        try lbfgs.loadStateDict(dict)
        #expect(lbfgs.paramGroups[0].options.maxEval == 5_000_000_000_000_000_000)
        _ = try lbfgs.step {
            x.grad = try Tensor(x.toArray().map { 2 * $0 }, dtype: .float64)
            return x.toArray().map { $0 * $0 }.reduce(0, +)
        }
        #expect(x.toArray().allSatisfy { abs($0) < 1e-6 })
    }

    /// A chunk as large as an `Int` holds runs the launch as one chunk, with the same bits.
    @Test(arguments: Backend.allCases)
    func aChunkOfIntMaxElementsRunsTheLaunch(backend: Backend) throws {
        func run(_ execution: Execution) throws -> [UInt8] {
            let x = try Tensor((0..<1000).map { Double($0) / 7 })
            x.grad = try Tensor((0..<1000).map { sin(Double($0)) })
            let adam = try Adam([x], execution: execution)
            try adam.step()
            try adam.step()
            return bytes(of: x)
        }
        let huge = try Execution(threads: 2, backend: backend, serialThreshold: 0, chunkElements: .max)
        #expect(try run(huge) == run(Execution(threads: 1, backend: .serial)))
    }

    @Test func tensorSizesThatOverflowAreRefused() throws {
        #expect(throws: OptimError.self) { try Tensor.zeros([1 << 62]) }
        #expect(throws: OptimError.self) { try Tensor.zeros([1 << 31, 1 << 31, 4]) }
        var storage: Float = 0
        #expect(throws: OptimError.self) {
            try Tensor(wrapping: &storage, shape: [1 << 62], dtype: .float32)
        }
    }

    /// An allocation the system cannot make throws `outOfMemory` instead of stopping the
    /// process. 256 TiB is past the address space of x86-64 and arm64 processes, whatever the
    /// kernel's overcommit policy; 16 TiB is refused unless the policy is "always" (1).
    @Test func anAllocationTheSystemRefusesThrows() throws {
        var sizes = [1 << 46]
        let policy = try? String(contentsOfFile: "/proc/sys/vm/overcommit_memory", encoding: .utf8)
        if policy?.trimmingCharacters(in: .whitespacesAndNewlines) != "1" { sizes.append(1 << 42) }
        for size in sizes {
            do {
                _ = try Tensor.zeros([size])
                Issue.record("a tensor of \(size) float32 elements was allocated")
            } catch let error as OptimError {
                #expect(error.kind == .outOfMemory, "\(error)")
            }
        }
    }

    /// A closure that returns NaN (or makes NaN gradients) during a strong-Wolfe line search
    /// ends the step with a defined result instead of indexing past the search's bracket.
    @Test(arguments: [0, 1, 2, 3], [true, false])
    func aLineSearchOverNaNLossesEnds(firstNaNCall: Int, nanGradients: Bool) throws {
        let x = try Tensor([-1.2, 1.0, -1.2, 1.0, -1.2], dtype: .float64)
        let lbfgs = try LBFGS([x], options: .init(lineSearch: .strongWolfe))
        var calls = 0
        for _ in 0..<3 {
            _ = try lbfgs.step {
                calls += 1
                let v = x.toArray()
                x.grad = try Tensor(v.map { calls > firstNaNCall && nanGradients ? .nan : 2 * $0 }, dtype: .float64)
                return calls > firstNaNCall ? .nan : v.map { $0 * $0 }.reduce(0, +)
            }
        }
    }

    /// LBFGS after two steps on a quadratic: its state has every key.
    private func steppedLBFGS() throws -> (LBFGS, Tensor) {
        let x = try Tensor([3.0, -1.0, 2.0], dtype: .float64)
        let lbfgs = try LBFGS([x], options: .init(maxIter: 2))
        for _ in 0..<2 {
            _ = try lbfgs.step {
                x.grad = try Tensor(x.toArray().enumerated().map { 2 * Double($0.offset + 1) * $0.element }, dtype: .float64)
                return x.toArray().enumerated().map { Double($0.offset + 1) * $0.element * $0.element }.reduce(0, +)
            }
        }
        return (lbfgs, x)
    }

    /// Checkpoints with a count that is no whole number, a missing or misspelled key, a list of
    /// the wrong length or a vector of the wrong size are refused, and nothing changes.
    @Test(arguments: [
        ("n_iter", StateValue.number(1e30)), ("func_evals", .number(.nan)), ("n_iter", .number(-1)),
        ("n_iter", .number(2.5)), ("prev_flat_grad", nil), ("t", .null), ("H_diag", nil), ("h_diag", .number(1)),
        ("t", .number(.infinity)), ("d", .tensor(TensorValue(dtype: .float64, shape: [2], data: [1, 2]))),
        ("old_dirs", .list([.null])), ("ro", .list([.number(1), .number(2), .number(3), .number(4)])),
        ("func_evals", nil), ("prev_loss", .string("low")),
    ] as [(String, StateValue?)])
    func aDamagedLBFGSCheckpointIsRefused(key: String, value: StateValue?) throws {
        let (lbfgs, x) = try steppedLBFGS()
        let before = lbfgs.stateDict()
        let parameters = x.toArray()
        var damaged = before
        damaged.state[0]?[key] = value
        #expect(throws: OptimError.self) { try lbfgs.loadStateDict(damaged) }
        #expect(lbfgs.stateDict() == before)
        #expect(x.toArray() == parameters)
        // And the optimizer still steps.
        _ = try lbfgs.step {
            x.grad = try Tensor(x.toArray().map { 2 * $0 }, dtype: .float64)
            return x.toArray().map { $0 * $0 }.reduce(0, +)
        }
    }

    /// A state before the first iteration (torch's, when the first gradient was already below
    /// the tolerance) has only the counts, and loads.
    @Test func anLBFGSStateWithOnlyItsCountsLoads() throws {
        let (lbfgs, _) = try steppedLBFGS()
        var dict = lbfgs.stateDict()
        dict.state[0] = ["func_evals": .integer(1), "n_iter": .integer(0)]
        try lbfgs.loadStateDict(dict)
        #expect(lbfgs.stateDict().state[0]?["n_iter"]?.doubleValue == 0)
    }

    /// One optimizer stepped from several threads at once runs the steps one after the other:
    /// the same bits as as many steps on one thread, never corrupted memory. Options changed
    /// from another thread meanwhile are serialized the same way.
    @Test func oneOptimizerSteppedFromSeveralThreadsSerializesTheSteps() throws {
        func parameters() throws -> [Tensor] {
            try (0..<8).map { index in
                let x = try Tensor((0..<3000).map { Double(($0 * 7 + index) % 13) / 13 })
                x.grad = try Tensor((0..<3000).map { Double(($0 * 5 + index) % 11) / 11 - 0.5 })
                return x
            }
        }
        let execution = try Execution(threads: 2, serialThreshold: 0, chunkElements: 512)
        let serial = try parameters()
        let reference = try Adam(serial, execution: execution)
        for _ in 0..<16 { try reference.step() }

        let shared = try parameters()
        let adam = try Adam(shared, execution: execution)
        let failures = Failures()
        DispatchQueue.concurrentPerform(iterations: 16) { number in
            do {
                try adam.step()
                if number % 4 == 0 { try adam.setOptions(adam.paramGroups[0].options, group: 0) }
            } catch {
                failures.record(error)
            }
        }
        #expect(failures.errors.isEmpty)
        #expect(shared.map { $0.bitHash() } == serial.map { $0.bitHash() })
    }

    /// Optimizers over disjoint parameters step concurrently with the results of stepping them
    /// one after the other.
    @Test func optimizersOverDisjointParametersStepConcurrently() throws {
        let execution = try Execution(threads: 2, serialThreshold: 0, chunkElements: 512)
        func make() throws -> [(Tensor, any Optimizer)] {
            try OptimizerCatalog.entries.filter { $0.engine == .builtInRule && $0.sparseGradients != .required }
                .map { entry in
                    let x = try Tensor((0..<2000).map { Double($0 % 17) / 17 })
                    x.grad = try Tensor((0..<2000).map { Double($0 % 5) - 2 })
                    return (x, try entry.make([x], execution: execution))
                }
        }
        let serial = try make()
        for (_, optimizer) in serial { for _ in 0..<5 { try optimizer.step() } }
        let concurrent = try make()
        let optimizers = concurrent.map(\.1)
        let failures = Failures()
        DispatchQueue.concurrentPerform(iterations: optimizers.count) { number in
            do {
                for _ in 0..<5 { try optimizers[number].step() }
            } catch {
                failures.record(error)
            }
        }
        #expect(failures.errors.isEmpty)
        #expect(concurrent.map { $0.0.bitHash() } == serial.map { $0.0.bitHash() })
    }
}

/// A state that lost one of its tensors but kept its step count is refused: its moment would
/// restart at zero under the old bias corrections (torch fails on the missing key). Optimizers
/// whose count belongs to the group (Adan, LAMB, schedule-free AdamW) keep no count per
/// parameter to tell a half state by, and SGD and Muon keep none at all.
extension HostileInputTests {
    @Test(arguments: OptimizerCatalog.entries.filter { $0.engine != .closure && $0.sparseGradients != .required })
    func aStateMissingATensorIsRefused(entry: OptimizerEntry) throws {
        let x = try Tensor((0..<12).map { Double($0) / 5 - 1 }, shape: [3, 4])
        let optimizer = try entry.make([x], options: entry.sampleOptions.last ?? [:])
        x.grad = try Tensor((0..<12).map { Double($0 % 5) - 2 }, shape: [3, 4])
        try optimizer.step()
        let before = optimizer.stateDict()
        let state = try #require(before.state[0])
        guard state["step"] != nil, before.paramGroups[0]["step"] == nil else { return }
        let tensors = state.filter { if case .tensor(let value) = $0.value { !value.shape.isEmpty } else { false } }
        #expect(!tensors.isEmpty)
        for key in tensors.keys {
            var damaged = before
            damaged.state[0]?[key] = nil
            #expect(throws: OptimError.self, "\(entry) without \(key)") { try optimizer.loadStateDict(damaged) }
            #expect(optimizer.stateDict() == before)
        }
    }
}

/// Errors thrown on other threads, collected for the test's thread.
private final class Failures: @unchecked Sendable {
    private let lock = NSLock()
    private var collected: [any Error] = []
    func record(_ error: any Error) { lock.withLock { collected.append(error) } }
    var errors: [any Error] { lock.withLock { collected } }
}
