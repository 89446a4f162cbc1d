import Foundation
import Optim
import Testing

/// Every input the library refuses, entry point by entry point: the call throws an
/// ``OptimError`` that says what was wrong, and changes nothing. Where the call has an object
/// whose state could change (an optimizer, a scheduler, a file, a tensor), its parameters,
/// state and options are compared with what they were, and an optimizer then steps as a twin
/// that never saw the refused call, so that a change nothing else shows (a cached launch, a
/// group's running sums) shows there.
@Suite struct RejectedInputTests {}

// MARK: - Optimizers

/// An optimizer of the catalog with state to lose: three matrices (Muon takes nothing else) in
/// three dtypes (LBFGS takes one), in two groups (LBFGS has one), the first group with the
/// entry's last sample options, which turn on the most state; stepped twice. Its twin is built
/// and stepped the same way.
final class SteppedOptimizer {
    let entry: OptimizerEntry
    let optimizer: any Optimizer
    let parameters: [Tensor]
    private let twin: any Optimizer
    private let twinParameters: [Tensor]
    private var steps = 0
    /// The state dict after the first step, with every group's rate halved: a dict that
    /// differs from the optimizer's own in every part, so that a load which applied part of it
    /// before refusing the rest would show.
    private(set) var earlierStateDict = OptimizerStateDict(state: [:], paramGroups: [])

    init(_ entry: OptimizerEntry) throws {
        self.entry = entry
        (optimizer, parameters) = try Self.make(entry)
        (twin, twinParameters) = try Self.make(entry)
        try stepBoth()
        var earlier = optimizer.stateDict()
        for group in earlier.paramGroups.indices {
            earlier.paramGroups[group]["lr"] = earlier.paramGroups[group]["lr"]?.doubleValue.map { .number($0 / 2) }
        }
        earlierStateDict = earlier
        try stepBoth()
    }

    private static func make(_ entry: OptimizerEntry) throws -> (any Optimizer, [Tensor]) {
        var random = TestRandom(seed: 17)
        let dtypes: [DType] = entry.singleDType ? [.float64, .float64, .float64] : [.float32, .float64, .bfloat16]
        let parameters = try zip([[3, 4], [4, 5], [2, 3]], dtypes).map { shape, dtype in
            try Tensor(random.values(shape.reduce(1, *)), shape: shape, dtype: dtype)
        }
        let options = entry.sampleOptions.last ?? [:]
        let groups: [OptimizerEntry.Group] = entry.engine == .closure
            ? [(parameters, options)]
            : [(Array(parameters[..<2]), options), ([parameters[2]], [:])]
        return (try entry.make(groups: groups, execution: Execution(threads: 1)), parameters)
    }

    /// The gradients of step `number`, as the optimizer takes them (rows of a sparse gradient
    /// for SparseAdam). LBFGS gets the gradient of a quadratic, which its closure re-evaluates.
    func setGradients(_ parameters: [Tensor], step number: Int) throws {
        var random = TestRandom(seed: UInt64(100 + number))
        for (index, parameter) in parameters.enumerated() {
            parameter.grad = nil
            parameter.sparseGrad = nil
            let values = entry.engine == .closure
                ? parameter.toArray().map { 2 * Double(index + 1) * $0 }
                : random.values(parameter.count)
            let gradient = try Tensor(values, shape: parameter.shape, dtype: parameter.dtype)
            if entry.sparseGradients == .required {
                parameter.sparseGrad = try RowSparseGradient(indices: Array(0..<parameter.shape[0]), values: gradient)
            } else {
                parameter.grad = gradient
            }
        }
    }

    /// One step of `optimizer` after `spoil` changed the gradients of step `number`: through the
    /// closure for LBFGS, which sets the gradients there.
    func step(_ optimizer: any Optimizer, _ parameters: [Tensor], number: Int,
              spoil: (([Tensor]) throws -> Void)? = nil) throws {
        func gradients() throws {
            try setGradients(parameters, step: number)
            try spoil?(parameters)
        }
        if entry.engine == .closure {
            try optimizer.step {
                try gradients()
                return parameters.enumerated().map { index, parameter in
                    parameter.toArray().map { Double(index + 1) * $0 * $0 }.reduce(0, +)
                }.reduce(0, +)
            }
        } else {
            try gradients()
            try optimizer.step()
        }
    }

    private func stepBoth() throws {
        try step(optimizer, parameters, number: steps)
        try step(twin, twinParameters, number: steps)
        steps += 1
    }

    /// A step whose gradients `spoil` damages after they were set right.
    func stepWithSpoiledGradients(_ spoil: @escaping ([Tensor]) throws -> Void) throws {
        try step(optimizer, parameters, number: steps, spoil: spoil)
    }

    /// Expects `call` to throw an ``OptimError`` (of `kind` when given) with a message, and to
    /// leave the parameters, the state and the options as they were.
    func expectRefusal(_ what: String, kind: OptimError.Kind? = nil, _ call: () throws -> Void) {
        let dict = optimizer.stateDict()
        let state = snapshot(parameters) { optimizer.state(for: $0) }
        let error = #expect(throws: OptimError.self, "\(entry): \(what) was accepted") { try call() }
        if let error {
            #expect(!error.message.isEmpty)
            if let kind { #expect(error.kind == kind, "\(entry): \(what): \(error)") }
        }
        #expect(optimizer.stateDict() == dict, "\(entry): \(what) changed the state dict")
        #expect(snapshot(parameters) { optimizer.state(for: $0) } == state, "\(entry): \(what) changed a parameter or the state")
    }

    /// Steps the optimizer and its twin with the same gradients: the same bits, the same state
    /// dict, whatever was refused before.
    func expectStepsLikeItsTwin() throws {
        try stepBoth()
        #expect(parameters.map { bytes(of: $0) } == twinParameters.map { bytes(of: $0) }, "\(entry) stepped unlike its twin")
        #expect(optimizer.stateDict() == twin.stateDict(), "\(entry)'s state dict differs from its twin's")
    }
}

extension RejectedInputTests {
    /// Structures and values no optimizer can build itself from: each construction throws.
    /// (An empty parameter list is refused by each optimizer's own initializer, see
    /// StepBehaviourTests; the catalog builds from groups, and one empty group is a group, as
    /// in torch.)
    @Test(arguments: OptimizerCatalog.entries)
    func aRefusedConstructionThrows(entry: OptimizerEntry) throws {
        let a = try Tensor.zeros([2, 2], dtype: .float64), b = try Tensor.zeros([2, 3], dtype: .float64)
        var cases: [(String, () throws -> Void)] = [
            ("no parameter group", { _ = try entry.make(groups: []) }),
            ("a parameter twice in one group", { _ = try entry.make([a, b, a]) }),
            ("a parameter in two groups", { _ = try entry.make(groups: [([a], [:]), ([b, a], [:])]) }),
        ]
        // LBFGS refuses a second group whatever its options (its first group's are checked by
        // OptimizerFamilyTests); the others check every group's options, not the first only.
        if entry.engine != .closure {
            cases += entry.invalidOptions.map { values in
                ("options \(values) in the second group", { _ = try entry.make(groups: [([a], [:]), ([b], values)]) })
            }
        }
        for (what, build) in cases {
            let error = #expect(throws: OptimError.self, "\(entry): \(what) was accepted") { try build() }
            #expect(error?.message.isEmpty == false)
        }
    }

    /// The base class of the engine's optimizers has no update of its own.
    @Test func theBaseClassOfTheOptimizersIsRefused() throws {
        let error = #expect(throws: OptimError.self) {
            _ = try ElementwiseOptimizer<Adam.Options>(groups: [.init([Tensor([1.0])])], defaults: .init())
        }
        #expect(error?.message.contains("subclasses") == true)
    }

    /// Gradients an optimizer refuses, on the parameter of its last group (the other gradients
    /// are right, so that a step that updated group by group would show).
    static func refusedGradients(for entry: OptimizerEntry) -> [(String, ([Tensor]) throws -> Void)] {
        func other(_ dtype: DType) -> DType { dtype == .float64 ? .float32 : .float64 }
        func sparse(_ parameter: Tensor, rows: [Int], width: Int? = nil, dtype: DType? = nil) throws -> RowSparseGradient {
            let shape = [rows.count, width ?? parameter.shape[1]]
            return try RowSparseGradient(indices: rows, values: Tensor.zeros(shape, dtype: dtype ?? parameter.dtype))
        }
        var cases: [(String, ([Tensor]) throws -> Void)] = [
            ("a gradient of another shape", { p in
                p[2].sparseGrad = nil
                p[2].grad = try Tensor.zeros([p[2].count], dtype: p[2].dtype)
            }),
            ("a gradient of another dtype", { p in
                p[2].sparseGrad = nil
                p[2].grad = try Tensor.zeros(p[2].shape, dtype: other(p[2].dtype))
            }),
            ("a dense and a sparse gradient at once", { p in
                p[2].grad = try Tensor.zeros(p[2].shape, dtype: p[2].dtype)
                p[2].sparseGrad = try sparse(p[2], rows: [0])
            }),
        ]
        switch entry.sparseGradients {
        case .refused:
            cases.append(("a sparse gradient", { p in
                p[2].grad = nil
                p[2].sparseGrad = try sparse(p[2], rows: [1])
            }))
        case .required:
            cases.append(("a dense gradient", { p in
                p[2].sparseGrad = nil
                p[2].grad = try Tensor.zeros(p[2].shape, dtype: p[2].dtype)
            }))
        case .accepted:
            break
        }
        if entry.sparseGradients != .refused {
            cases += [
                ("a sparse gradient past the last row", { p in
                    p[2].grad = nil
                    p[2].sparseGrad = try sparse(p[2], rows: [0, p[2].shape[0]])
                }),
                ("sparse rows of another width", { p in
                    p[2].grad = nil
                    p[2].sparseGrad = try sparse(p[2], rows: [0], width: p[2].shape[1] + 1)
                }),
                ("sparse rows of another dtype", { p in
                    p[2].grad = nil
                    p[2].sparseGrad = try sparse(p[2], rows: [1], dtype: other(p[2].dtype))
                }),
            ]
        }
        return cases
    }

    @Test(arguments: OptimizerCatalog.entries)
    func aRefusedGradientChangesNothing(entry: OptimizerEntry) throws {
        let subject = try SteppedOptimizer(entry)
        for (what, spoil) in Self.refusedGradients(for: entry) {
            subject.expectRefusal("a step with \(what)", kind: .gradientMismatch) {
                try subject.stepWithSpoiledGradients(spoil)
            }
        }
        if entry.engine == .closure {
            subject.expectRefusal("a step without a closure", kind: .invalidArgument) { try subject.optimizer.step() }
        }
        try subject.expectStepsLikeItsTwin()
    }

    /// Adagrad takes a sparse gradient, but not in a group with weight decay (torch's rule).
    @Test func adagradRefusesASparseGradientUnderWeightDecay() throws {
        let entry = try #require(OptimizerCatalog.entry(named: "Adagrad"))
        let subject = try SteppedOptimizer(entry)
        #expect(subject.optimizer.stateDict().paramGroups[0]["weight_decay"]?.doubleValue ?? 0 > 0)
        subject.expectRefusal("a sparse gradient in a group with weight decay", kind: .invalidOption) {
            try subject.stepWithSpoiledGradients { p in
                p[0].grad = nil
                p[0].sparseGrad = try RowSparseGradient(indices: [1], values: Tensor.zeros([1, 4], dtype: p[0].dtype))
            }
        }
        try subject.expectStepsLikeItsTwin()
    }

    /// `setOptions` through the optimizer's own options type, changed by torch's names.
    static func setOptions<O: Optimizer>(of optimizer: O, group: Int, changing values: [String: StateValue]) throws {
        let source = optimizer.paramGroups[min(max(group, 0), optimizer.paramGroups.count - 1)].options
        let named = try #require(source as? any TorchNamedOptions)
        let changed = try #require(try named.applying(torchValues: values) as? O.Options)
        try optimizer.setOptions(changed, group: group)
    }

    /// Options out of their domain, and groups that do not exist.
    @Test(arguments: OptimizerCatalog.entries)
    func refusedOptionsChangeNothing(entry: OptimizerEntry) throws {
        let subject = try SteppedOptimizer(entry)
        let last = subject.optimizer.learningRates.count - 1
        for values in entry.invalidOptions {
            subject.expectRefusal("options \(values) for group \(last)") {
                try Self.setOptions(of: subject.optimizer, group: last, changing: values)
            }
        }
        for group in [last + 1, -1] {
            subject.expectRefusal("options for group \(group)", kind: .invalidArgument) {
                try Self.setOptions(of: subject.optimizer, group: group, changing: [:])
            }
        }
        try subject.expectStepsLikeItsTwin()
    }

    /// `addParamGroup` with options changed by torch's names.
    static func addGroup<O: Optimizer>(to optimizer: O, _ parameters: [Tensor], changing values: [String: StateValue]) throws {
        let engineOptimizer = try #require(optimizer as? ElementwiseOptimizer<O.Options>)
        let named = try #require(engineOptimizer.defaults as? any TorchNamedOptions)
        let options = try #require(try named.applying(torchValues: values) as? O.Options)
        try engineOptimizer.addParamGroup(ParameterGroupSpec(parameters) { $0 = options })
    }

    /// Groups `addParamGroup` refuses: parameters it has already (alone or beside a new one),
    /// a parameter twice, options out of their domain, shapes the optimizer does not take.
    /// LBFGS keeps one group and has no `addParamGroup`, as torch's LBFGS refuses a second.
    @Test(arguments: OptimizerCatalog.entries.filter { $0.engine != .closure })
    func aRefusedParameterGroupChangesNothing(entry: OptimizerEntry) throws {
        let subject = try SteppedOptimizer(entry)
        let newcomer = try Tensor.zeros([2, 2], dtype: subject.parameters[0].dtype)
        var cases: [(String, [Tensor], [String: StateValue])] = [
            ("a parameter it has", [subject.parameters[2]], [:]),
            ("a new parameter beside one it has", [newcomer, subject.parameters[0]], [:]),
            ("a new parameter twice", [newcomer, newcomer], [:]),
        ]
        cases += entry.invalidOptions.map { ("options \($0)", [newcomer], $0) }
        if entry.needsMatrices { cases.append(("a vector", [try Tensor.zeros([4])], [:])) }
        for (what, parameters, values) in cases {
            subject.expectRefusal("a group with \(what)") { try Self.addGroup(to: subject.optimizer, parameters, changing: values) }
            #expect(subject.optimizer.state(for: newcomer) == nil)
        }
        try subject.expectStepsLikeItsTwin()
    }

    /// Damaged copies of an optimizer's state dict, each with what is wrong with it: damage to
    /// the structure every state dict shares, then to each key of the first parameter's state
    /// and to the group's step count and running sums where the optimizer keeps them.
    static func damagedCopies(of dict: OptimizerStateDict, entry: OptimizerEntry) -> [(String, OptimizerStateDict)] {
        var copies: [(String, OptimizerStateDict)] = []
        func damage(_ what: String, _ change: (inout OptimizerStateDict) -> Void) {
            var copy = dict
            change(&copy)
            copies.append((what, copy))
        }
        func ids(_ dict: OptimizerStateDict) -> [StateValue] {
            if case .list(let ids)? = dict.paramGroups[0]["params"] { ids } else { [] }
        }
        damage("a parameter group more") { $0.paramGroups.append($0.paramGroups[0]) }
        damage("a parameter group less") { $0.paramGroups.removeLast() }
        damage("a group without params") { $0.paramGroups[0]["params"] = nil }
        damage("params that are no list") { $0.paramGroups[0]["params"] = .integer(0) }
        damage("a parameter id less") { $0.paramGroups[0]["params"] = .list(Array(ids($0).dropLast())) }
        damage("a parameter id twice") { $0.paramGroups[0]["params"] = .list([ids($0)[0], ids($0)[0]] + ids($0).dropFirst(2)) }
        damage("a parameter id that is no integer") { $0.paramGroups[0]["params"] = .list(["weight"] + ids($0).dropFirst()) }
        damage("a rate that is no number") { $0.paramGroups[$0.paramGroups.count - 1]["lr"] = "fast" }
        for values in entry.invalidOptions {
            damage("options \(values)") { $0.paramGroups[$0.paramGroups.count - 1].merge(values) { $1 } }
        }
        damage("state of a parameter no group lists") { $0.state[100] = $0.state[0] }
        damage("state the optimizer does not keep") { $0.state[0]?["no_such_state"] = 1 }

        let state = dict.state[0] ?? [:]
        for key in state.keys.sorted() {
            switch state[key] {
            case .tensor(let tensor)? where !tensor.shape.isEmpty:
                damage("\(key) of another shape") {
                    $0.state[0]?[key] = .tensor(TensorValue(dtype: tensor.dtype, shape: [tensor.count + 1],
                                                            data: Array(repeating: 0, count: tensor.count + 1)))
                }
                damage("\(key) holding fewer elements than its shape") {
                    $0.state[0]?[key] = .tensor(TensorValue(dtype: tensor.dtype, shape: tensor.shape,
                                                            data: Array(repeating: 0, count: tensor.count - 1)))
                }
                damage("\(key) that is no tensor") { $0.state[0]?[key] = 1 }
            case .list?:
                damage("\(key) that is no list") { $0.state[0]?[key] = 1 }
            case let value? where value.doubleValue != nil:
                damage("\(key) that is no number") { $0.state[0]?[key] = "none" }
            default:
                break
            }
        }
        // Step counts: torch's per parameter, LBFGS's iterations and evaluations, and the
        // group's where the count belongs to the group (Adan, LAMB, schedule-free AdamW).
        for key in ["step", "n_iter", "func_evals"] where state[key] != nil {
            damage("a \(key) of 2.5") { $0.state[0]?[key] = .number(2.5) }
            damage("a negative \(key)") { $0.state[0]?[key] = .number(-1) }
            damage("a \(key) of 1e300") { $0.state[0]?[key] = .number(1e300) }
            damage("no \(key)") { $0.state[0]?[key] = nil }
        }
        let group = dict.paramGroups[0]
        if group["step"] != nil {
            damage("a group step of 2.5") { $0.paramGroups[0]["step"] = .number(2.5) }
            damage("a negative group step") { $0.paramGroups[0]["step"] = .number(-1) }
            damage("no group step") { $0.paramGroups[0]["step"] = nil }
        }
        let notRunningSums = Set(entry.defaults.keys).union(["params", "param_names", "step"])
        for key in group.keys.sorted() where !notRunningSums.contains(key) {
            damage("a group's \(key) that is no number") { $0.paramGroups[0][key] = "none" }
            damage("an infinite group \(key)") { $0.paramGroups[0][key] = .number(.infinity) }
        }
        return copies
    }

    @Test(arguments: OptimizerCatalog.entries)
    func aDamagedStateDictIsRefusedAndChangesNothing(entry: OptimizerEntry) throws {
        let subject = try SteppedOptimizer(entry)
        let damaged = Self.damagedCopies(of: subject.earlierStateDict, entry: entry)
        // The shared damages, one per invalid option set, and three for a state tensor at least.
        #expect(damaged.count >= 10 + entry.invalidOptions.count + 3)
        for (what, dict) in damaged {
            subject.expectRefusal("a state dict with \(what)") { try subject.optimizer.loadStateDict(dict) }
        }
        try subject.expectStepsLikeItsTwin()
        // Undamaged, the dict loads: each refusal was the damage's.
        try subject.optimizer.loadStateDict(subject.earlierStateDict)
        #expect(subject.optimizer.stateDict() == subject.earlierStateDict)
    }

    /// Names that do not fit the group. LBFGS keeps no parameter names.
    @Test(arguments: OptimizerCatalog.entries.filter { $0.engine != .closure })
    func parameterNamesThatDoNotFitAreRefused(entry: OptimizerEntry) throws {
        let subject = try SteppedOptimizer(entry)
        let saved = subject.earlierStateDict
        let cases: [(String, StateValue)] = [("one name for two parameters", ["weight"]), ("numbers", [1, 2]),
                                             ("a name", "weight")]
        for (what, names) in cases {
            var damaged = saved
            damaged.paramGroups[0]["param_names"] = names
            subject.expectRefusal("param_names that are \(what)") { try subject.optimizer.loadStateDict(damaged) }
        }
        try subject.expectStepsLikeItsTwin()
    }

    /// A checkpoint file that is whole but does not fit the optimizer (another type, another
    /// structure, a damaged state, no file at all) is refused and changes nothing.
    @Test(arguments: OptimizerCatalog.entries)
    func aCheckpointThatDoesNotFitIsRefused(entry: OptimizerEntry) throws {
        let subject = try SteppedOptimizer(entry)
        let path = CheckpointTests.temporaryPath("fits-\(entry.name)-\(UInt64.random(in: 0...UInt64.max)).safetensors")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Checkpoint.save(subject.optimizer, to: path)
        var saved = try Checkpoint.read(from: path)
        saved.stateDict = subject.earlierStateDict
        var anotherType = saved
        anotherType.optimizer = "NoSuchOptimizer"
        var anotherStructure = saved
        anotherStructure.stateDict.paramGroups.append(saved.stateDict.paramGroups[0])
        let damagedState = try #require(Self.damagedCopies(of: saved.stateDict, entry: entry)
            .first { $0.0.hasSuffix("of another shape") })
        var damaged = saved
        damaged.stateDict = damagedState.1
        for (what, contents) in [("another optimizer's checkpoint", anotherType),
                                 ("a checkpoint of another structure", anotherStructure),
                                 ("a checkpoint with \(damagedState.0)", damaged)] {
            try Checkpoint.write(contents, to: path)
            subject.expectRefusal("loading \(what)", kind: .invalidArgument) { try Checkpoint.load(into: subject.optimizer, from: path) }
        }
        subject.expectRefusal("loading a file that does not exist", kind: .invalidArgument) {
            try Checkpoint.load(into: subject.optimizer, from: path + ".missing")
        }
        try subject.expectStepsLikeItsTwin()
    }

    /// Schedule-free AdamW steps only from its training point: after `evaluationParameters()`
    /// a step is refused, and the parameters stay at the average.
    @Test func scheduleFreeAdamWRefusesAStepInEvaluationMode() throws {
        let entry = try #require(OptimizerCatalog.entry(named: "ScheduleFreeAdamW"))
        let subject = try SteppedOptimizer(entry)
        let optimizer = try #require(subject.optimizer as? ScheduleFreeAdamW)
        // The parameters' trip to the average and back may round: the control makes it too.
        let control = try SteppedOptimizer(entry)
        let controlOptimizer = try #require(control.optimizer as? ScheduleFreeAdamW)
        try controlOptimizer.evaluationParameters()
        try controlOptimizer.trainingParameters()
        try optimizer.evaluationParameters()
        subject.expectRefusal("a step in evaluation mode", kind: .invalidArgument) {
            try subject.stepWithSpoiledGradients { _ in }
        }
        #expect(!optimizer.isTraining)
        try optimizer.trainingParameters()
        try subject.step(optimizer, subject.parameters, number: 2)
        try control.step(controlOptimizer, control.parameters, number: 2)
        #expect(subject.parameters.map { bytes(of: $0) } == control.parameters.map { bytes(of: $0) })
        #expect(optimizer.stateDict() == controlOptimizer.stateDict())
    }
}

// MARK: - Swift rules

/// A rule that asks for more state slots than a rule has.
struct FiveSlotRule: ElementwiseRule {
    struct Options: TorchFieldOptions, DefaultOptions {
        var lr = 1e-3
        static let torchFields: [OptionField<Self>] = [.number("lr", \.lr)]
    }
    struct Scalars { var lr: Double }
    static let name = "FiveSlotRule"
    static let stateNames = ["a", "b", "c", "d", "e"]

    static func scalars(_ o: Options, step: Int, state: inout NoScalarState) -> Scalars { Scalars(lr: o.lr) }

    static func update<V: RuleVector>(parameter p: inout V, gradient g: V, state: inout RuleState<V>, scalars s: Scalars) {
        p = p - V(s.lr) * g
    }
}

extension RejectedInputTests {
    @Test func aSwiftRuleIsRefusedOptionsOutOfItsDomainAndMoreSlotsThanARuleHas() throws {
        let x = try Tensor([1.0, 2.0])
        let slots = #expect(throws: OptimError.self) { _ = try RuleOptimizer<FiveSlotRule>([x]) }
        #expect(slots?.message.contains("5 state slots") == true, "\(String(describing: slots))")
        for lr in [-1, Double.nan, .infinity] {
            let rate = #expect(throws: OptimError.self) { _ = try RuleOptimizer<SignedMomentum>([x], options: .init(lr: lr)) }
            #expect(rate?.kind == .invalidOption)
        }
        let optimizer = try RuleOptimizer<SignedMomentum>([x], options: .init(lr: 0.1))
        x.grad = try Tensor([1.0, -1.0])
        try optimizer.step()
        let before = snapshot([x]) { optimizer.state(for: $0) }
        #expect(throws: OptimError.self) { try optimizer.setOptions(.init(lr: -1), group: 0) }
        #expect(optimizer.paramGroups[0].options.lr == 0.1)
        #expect(snapshot([x]) { optimizer.state(for: $0) } == before)
    }
}

// MARK: - Schedulers

/// What a refused scheduler call must leave as it was besides the optimizer: the progress of
/// the schedulers involved.
protocol SavesSchedulerState: AnyObject {
    func stateDict() -> SchedulerState
}

extension LRScheduler: SavesSchedulerState {}
extension ReduceLROnPlateau: SavesSchedulerState {}

/// A scheduler call to refuse: an optimizer, what to build (and step) before the call, and the
/// call itself.
struct SchedulerRefusal: Sendable, CustomStringConvertible {
    let description: String
    let optimizer: @Sendable () throws -> any Optimizer
    /// Builds what the call needs; returns the schedulers whose progress must not change and
    /// the call.
    let stage: @Sendable (any Optimizer) throws -> (schedulers: [any SavesSchedulerState], call: () throws -> Void)

    /// A call made after `stage` built (and stepped) what it needs.
    static func staged(_ description: String, _ optimizer: @escaping @Sendable () throws -> any Optimizer,
                       _ stage: @escaping @Sendable (any Optimizer) throws -> (schedulers: [any SavesSchedulerState],
                                                                               call: () throws -> Void)) -> Self {
        Self(description: description, optimizer: optimizer, stage: stage)
    }

    /// A scheduler's construction: nothing is built before it.
    static func building(_ description: String, _ optimizer: @escaping @Sendable () throws -> any Optimizer,
                         _ build: @escaping @Sendable (any Optimizer) throws -> Void) -> Self {
        Self(description: description, optimizer: optimizer) { optimizer in ([], { try build(optimizer) }) }
    }
}

extension RejectedInputTests {
    /// SGD with momentum over two groups (rates 0.1 and 0.2).
    @Sendable static func sgd() throws -> any Optimizer { try SchedulerTests.sgd() }

    /// Adam over two groups: its β₁ is what cyclic schedulers cycle.
    @Sendable static func adam() throws -> any Optimizer {
        try Adam(groups: [.init([Tensor([1.0])]), .init([Tensor([2.0])]) { $0.lr = 0.01 }])
    }

    /// Adagrad, which has no momentum to cycle.
    @Sendable static func adagrad() throws -> any Optimizer { try Adagrad([Tensor([1.0])]) }

    /// Lion over two groups: it refuses a rate of 0 (lion-pytorch's check), which the
    /// schedulers' own check lets through.
    @Sendable static func lion() throws -> any Optimizer {
        try Lion(groups: [.init([Tensor([1.0, 2.0])]), .init([Tensor([3.0])]) { $0.lr = 2e-4 }], defaults: .init(lr: 1e-4))
    }

    /// Constructions refused for their arguments, or because the optimizer refuses the rates or
    /// momentum they would set, for one group after others were set.
    static let refusedConstructions: [SchedulerRefusal] = [
        .building("StepLR with step_size 0", sgd) { _ = try StepLR($0, stepSize: 0) },
        .building("StepLR with a NaN gamma", sgd) { _ = try StepLR($0, stepSize: 2, gamma: .nan) },
        .building("MultiStepLR with an infinite gamma", sgd) { _ = try MultiStepLR($0, milestones: [2], gamma: .infinity) },
        .building("ConstantLR with factor 1.5", sgd) { _ = try ConstantLR($0, factor: 1.5) },
        .building("ConstantLR with factor 0 on Lion", lion) { _ = try ConstantLR($0, factor: 0) },
        .building("LinearLR with start factor 0", sgd) { _ = try LinearLR($0, startFactor: 0) },
        .building("LinearLR with end factor 1.5", sgd) { _ = try LinearLR($0, endFactor: 1.5) },
        .building("LinearLR with total_iters 0", sgd) { _ = try LinearLR($0, totalIters: 0) },
        .building("ExponentialLR with a NaN gamma", sgd) { _ = try ExponentialLR($0, gamma: .nan) },
        .building("PolynomialLR with total_iters 0", sgd) { _ = try PolynomialLR($0, totalIters: 0) },
        .building("PolynomialLR with a NaN power", sgd) { _ = try PolynomialLR($0, power: .nan) },
        .building("CosineAnnealingLR with T_max 0", sgd) { _ = try CosineAnnealingLR($0, tMax: 0) },
        .building("CosineAnnealingLR with a NaN eta_min", sgd) { _ = try CosineAnnealingLR($0, tMax: 3, etaMin: .nan) },
        .building("CosineAnnealingWarmRestarts with T_0 0", sgd) { _ = try CosineAnnealingWarmRestarts($0, t0: 0) },
        .building("CosineAnnealingWarmRestarts with T_mult 0", sgd) { _ = try CosineAnnealingWarmRestarts($0, t0: 2, tMult: 0) },
        .building("CosineAnnealingWarmRestarts with an infinite eta_min", sgd) {
            _ = try CosineAnnealingWarmRestarts($0, t0: 2, etaMin: .infinity)
        },
        .building("LambdaLR with three functions for two groups", sgd) {
            _ = try LambdaLR($0, lambdas: [{ _ in 1 }, { _ in 1 }, { _ in 1 }])
        },
        .building("MultiplicativeLR with three functions for two groups", sgd) {
            _ = try MultiplicativeLR($0, lambdas: [{ _ in 1 }, { _ in 1 }, { _ in 1 }])
        },
        .building("LambdaLR whose first rate Lion refuses for its second group", lion) {
            _ = try LambdaLR($0, lambdas: [{ _ in 0.5 }, { _ in 0 }])
        },
        .building("CyclicLR with three base rates for two groups", sgd) { _ = try CyclicLR($0, baseLR: [0.1, 0.1, 0.1], maxLR: [1]) },
        .building("CyclicLR with three max rates for two groups", sgd) { _ = try CyclicLR($0, baseLR: [0.1], maxLR: [1, 1, 1]) },
        .building("CyclicLR with step_size_up 0", sgd) { _ = try CyclicLR($0, baseLR: [0.1], maxLR: [1], stepSizeUp: 0) },
        .building("CyclicLR with step_size_down 0", sgd) { _ = try CyclicLR($0, baseLR: [0.1], maxLR: [1], stepSizeDown: 0) },
        .building("CyclicLR with three base momentums for two groups", sgd) {
            _ = try CyclicLR($0, baseLR: [0.1], maxLR: [1], baseMomentum: [0.8, 0.8, 0.8])
        },
        .building("CyclicLR without a momentum to cycle", adagrad) { _ = try CyclicLR($0, baseLR: [0.1], maxLR: [1]) },
        .building("CyclicLR with a base rate SGD refuses for its second group", sgd) {
            _ = try CyclicLR($0, baseLR: [0.01, -0.01], maxLR: [1])
        },
        .building("CyclicLR with a max momentum Adam refuses", adam) {
            _ = try CyclicLR($0, baseLR: [0.001], maxLR: [0.01], maxMomentum: [0.9, 1.5])
        },
        .building("OneCycleLR with total_steps 0", sgd) { _ = try OneCycleLR($0, maxLR: [1], totalSteps: 0) },
        .building("OneCycleLR with 0 epochs", sgd) { _ = try OneCycleLR($0, maxLR: [1], epochs: 0, stepsPerEpoch: 3) },
        .building("OneCycleLR with 0 steps per epoch", sgd) { _ = try OneCycleLR($0, maxLR: [1], epochs: 3, stepsPerEpoch: 0) },
        .building("OneCycleLR without a length", sgd) { _ = try OneCycleLR($0, maxLR: [1], epochs: 3) },
        .building("OneCycleLR with pct_start 1.5", sgd) { _ = try OneCycleLR($0, maxLR: [1], totalSteps: 5, pctStart: 1.5) },
        .building("OneCycleLR with three max rates for two groups", sgd) { _ = try OneCycleLR($0, maxLR: [1, 1, 1], totalSteps: 5) },
        .building("OneCycleLR without a momentum to cycle", adagrad) { _ = try OneCycleLR($0, maxLR: [1], totalSteps: 5) },
        .building("OneCycleLR with negative max rates", sgd) { _ = try OneCycleLR($0, maxLR: [-1], totalSteps: 5) },
        .building("OneCycleLR with a max momentum Adam refuses for its second group", adam) {
            _ = try OneCycleLR($0, maxLR: [0.01], totalSteps: 5, maxMomentum: [0.95, 1.5])
        },
        .building("SWALR with anneal_epochs -1", sgd) { _ = try SWALR($0, swaLR: 0.05, annealEpochs: -1) },
        .building("SWALR with three rates for two groups", sgd) { _ = try SWALR($0, swaLR: [0.05, 0.05, 0.05]) },
        .building("SWALR with a NaN rate", sgd) { _ = try SWALR($0, swaLR: .nan) },
        .building("SequentialLR without schedulers", sgd) { _ = try SequentialLR($0, schedulers: [], milestones: []) },
        .staged("SequentialLR with as many milestones as schedulers", sgd) { optimizer in
            let schedulers: [LRScheduler] = [try StepLR(optimizer, stepSize: 2), try ExponentialLR(optimizer, gamma: 0.9)]
            return (schedulers as [any SavesSchedulerState], { _ = try SequentialLR(optimizer, schedulers: schedulers, milestones: [2, 4]) })
        },
        .staged("SequentialLR with a scheduler of another optimizer", sgd) { optimizer in
            let schedulers: [LRScheduler] = [try StepLR(optimizer, stepSize: 2), try StepLR(Self.sgd(), stepSize: 2)]
            return (schedulers as [any SavesSchedulerState], { _ = try SequentialLR(optimizer, schedulers: schedulers, milestones: [3]) })
        },
        .building("ChainedScheduler without schedulers", sgd) { _ in _ = try ChainedScheduler([]) },
        .staged("ChainedScheduler with a scheduler of another optimizer", sgd) { optimizer in
            let schedulers: [LRScheduler] = [try StepLR(optimizer, stepSize: 2), try StepLR(Self.sgd(), stepSize: 2)]
            return (schedulers as [any SavesSchedulerState], { _ = try ChainedScheduler(schedulers) })
        },
        .building("ReduceLROnPlateau with factor 1", sgd) { _ = try ReduceLROnPlateau($0, factor: 1) },
        .building("ReduceLROnPlateau with a NaN factor", sgd) { _ = try ReduceLROnPlateau($0, factor: .nan) },
        .building("ReduceLROnPlateau with an infinite threshold", sgd) { _ = try ReduceLROnPlateau($0, threshold: .infinity) },
        .building("ReduceLROnPlateau with eps -1", sgd) { _ = try ReduceLROnPlateau($0, eps: -1) },
        .building("ReduceLROnPlateau with patience -1", sgd) { _ = try ReduceLROnPlateau($0, patience: -1) },
        .building("ReduceLROnPlateau with cooldown -1", sgd) { _ = try ReduceLROnPlateau($0, cooldown: -1) },
        .building("ReduceLROnPlateau with three floors for two groups", sgd) { _ = try ReduceLROnPlateau($0, minLR: [0, 0, 0]) },
    ]

    /// Steps refused because the schedule reaches a rate (or momentum) the optimizer refuses,
    /// possibly for one group after others were set, or because it has ended.
    static let refusedSteps: [SchedulerRefusal] = [
        .staged("a LambdaLR step to a negative rate", sgd) { optimizer in
            let scheduler = try LambdaLR(optimizer, lambda: { $0 < 2 ? 1 : -1 })
            try scheduler.step()
            return ([scheduler], { try scheduler.step() })
        },
        .staged("a LambdaLR step to a rate Lion refuses for its second group", lion) { optimizer in
            let scheduler = try LambdaLR(optimizer, lambdas: [{ $0 == 0 ? 1 : 0.5 }, { $0 == 0 ? 1 : 0 }])
            return ([scheduler], { try scheduler.step() })
        },
        .staged("a MultiplicativeLR step to a rate Lion refuses for its second group", lion) { optimizer in
            let scheduler = try MultiplicativeLR(optimizer, lambdas: [{ _ in 0.5 }, { _ in 0 }])
            return ([scheduler], { try scheduler.step() })
        },
        .staged("a CyclicLR step to a negative rate, after it cycled the momentum", sgd) { optimizer in
            let scheduler = try CyclicLR(optimizer, baseLR: [0.01], maxLR: [-1], stepSizeUp: 4)
            return ([scheduler], { try scheduler.step() })
        },
        .staged("a OneCycleLR step past its total steps", sgd) { optimizer in
            let scheduler = try OneCycleLR(optimizer, maxLR: [1], totalSteps: 2)
            for _ in 0..<2 { try scheduler.step() }
            return ([scheduler], { try scheduler.step() })
        },
        .staged("a CosineAnnealingWarmRestarts step to a negative rate", sgd) { optimizer in
            let scheduler = try CosineAnnealingWarmRestarts(optimizer, t0: 4, etaMin: -1)
            return ([scheduler], { try scheduler.step() })
        },
        .staged("a SWALR step to a negative rate", sgd) { optimizer in
            let scheduler = try SWALR(optimizer, swaLR: -1, annealEpochs: 2)
            return ([scheduler], { try scheduler.step() })
        },
        .staged("a SequentialLR step its second scheduler refuses", sgd) { optimizer in
            let scheduler = try SequentialLR(optimizer, schedulers: [ExponentialLR(optimizer, gamma: 0.5),
                                                                     LambdaLR(optimizer, lambda: { $0 < 1 ? 1 : -1 })],
                                             milestones: [1])
            try scheduler.step()
            return ([scheduler], { try scheduler.step() })
        },
        .staged("a ChainedScheduler step its second scheduler refuses", sgd) { optimizer in
            let scheduler = try ChainedScheduler([ExponentialLR(optimizer, gamma: 0.5),
                                                  LambdaLR(optimizer, lambda: { $0 < 1 ? 1 : -1 })])
            return ([scheduler], { try scheduler.step() })
        },
        .staged("a ReduceLROnPlateau step to a rate SGD refuses for its second group", sgd) { optimizer in
            let scheduler = try ReduceLROnPlateau(optimizer, factor: -0.5, patience: 0, minLR: [0, -1])
            try scheduler.step(metric: 1)
            return ([scheduler], { try scheduler.step(metric: 1) })
        },
    ]

    /// Scales every group's rate: what a training loop might do between two schedulers.
    static func scaleRates<O: Optimizer>(of optimizer: O, by factor: Double) throws {
        for group in optimizer.paramGroups.indices {
            var options = optimizer.paramGroups[group].options
            options.lr *= factor
            try optimizer.setOptions(options, group: group)
        }
    }

    /// The call throws, and leaves the optimizer (its options, and the initial rates that a
    /// scheduler built later starts from, torch's `initial_lr`) and the schedulers' progress as
    /// a twin's that went through the same stage without the call.
    @Test(arguments: refusedConstructions + refusedSteps)
    func aRefusedSchedulerCallChangesNothing(refusal: SchedulerRefusal) throws {
        let optimizer = try refusal.optimizer(), twin = try refusal.optimizer()
        let (schedulers, call) = try refusal.stage(optimizer)
        let (twinSchedulers, _) = try refusal.stage(twin)
        let error = #expect(throws: OptimError.self, "\(refusal) was accepted") { try call() }
        #expect(error?.message.isEmpty == false)
        #expect(optimizer.stateDict() == twin.stateDict(), "\(refusal) changed the optimizer's options")
        #expect(schedulers.map { $0.stateDict() } == twinSchedulers.map { $0.stateDict() }, "\(refusal) changed a scheduler")
        try Self.scaleRates(of: optimizer, by: 2)
        try Self.scaleRates(of: twin, by: 2)
        #expect(try StepLR(optimizer, stepSize: 1).baseLearningRates == StepLR(twin, stepSize: 1).baseLearningRates,
                "\(refusal) left initial rates behind")
    }

    /// Damaged copies of a scheduler's state, each with what is wrong with it.
    static func damagedCopies(of state: SchedulerState) -> [(String, SchedulerState)] {
        var copies: [(String, SchedulerState)] = []
        func damage(_ what: String, _ change: (inout [String: StateValue]) -> Void) {
            var copy = state.values
            change(&copy)
            copies.append((what, SchedulerState(values: copy)))
        }
        for key in state.values.keys.sorted() {
            damage("no \(key)") { $0[key] = nil }
            switch state.values[key] {
            case .list(let items)? where key != "_schedulers":
                damage("\(key) of one item more") { $0[key] = .list(items + [0.1]) }
                damage("\(key) holding a name") { $0[key] = .list(["fast"] + items.dropFirst()) }
            case .list(let items)?:
                damage("\(key) of one scheduler less") { $0[key] = .list(Array(items.dropLast())) }
                damage("\(key) holding no dictionary") { $0[key] = .list(Array(items.dropLast()) + [1]) }
                if case .dictionary(var last)? = items.last {
                    last["last_epoch"] = nil
                    damage("a last scheduler without last_epoch") { $0[key] = .list(Array(items.dropLast()) + [.dictionary(last)]) }
                }
            case let value? where value.doubleValue != nil:
                damage("\(key) that is no number") { $0[key] = "none" }
            default:
                break
            }
        }
        for key in ["last_epoch", "_step_count", "T_i", "num_bad_epochs", "cooldown_counter"] where state.values[key] != nil {
            damage("a \(key) of 2.5") { $0[key] = .number(2.5) }
        }
        return copies
    }

    /// Saved states that do not fit are refused and change neither the scheduler nor the
    /// optimizer, for every kind of scheduler.
    @Test(arguments: SchedulerTests.kinds + ["ReduceLROnPlateau"])
    func aDamagedSchedulerStateIsRefusedAndChangesNothing(kind: String) throws {
        let sgd = try SchedulerTests.sgd()
        let scheduler: any SavesSchedulerState
        let load: (SchedulerState) throws -> Void
        let earlier: SchedulerState
        if kind == "ReduceLROnPlateau" {
            let plateau = try ReduceLROnPlateau(sgd, factor: 0.5, patience: 0)
            (scheduler, load) = (plateau, plateau.loadStateDict)
            try plateau.step(metric: 1)
            earlier = plateau.stateDict()
            for metric in [2.0, 3] { try plateau.step(metric: metric) }
        } else {
            let schedule = try SchedulerTests.make(kind, sgd)
            (scheduler, load) = (schedule, schedule.loadStateDict)
            try schedule.step()
            earlier = schedule.stateDict()
            for _ in 0..<2 { try schedule.step() }
        }
        let saved = scheduler.stateDict()
        let options = sgd.stateDict()
        // Damaged copies of a state other than the scheduler's own, so that a load which
        // restored part of it before refusing the rest would show.
        let damaged = Self.damagedCopies(of: earlier)
        #expect(damaged.count >= 8)
        for (what, state) in damaged {
            #expect(throws: OptimError.self, "\(kind): a state with \(what) was accepted") { try load(state) }
            #expect(scheduler.stateDict() == saved, "\(kind): a state with \(what) changed the scheduler")
            #expect(sgd.stateDict() == options)
        }
        // Undamaged, the state loads: each refusal was the damage's.
        try load(earlier)
        #expect(scheduler.stateDict() == earlier)
    }
}

// MARK: - Tensors, executions, multi-tensor operations, clipping, averages, checkpoint saves

extension RejectedInputTests {
    @Test func refusedTensorsThrow() throws {
        var storage = (Float(0), Float(0))
        let cases: [(String, () throws -> Void)] = [
            ("values that do not fill their shape", { _ = try Tensor([1.0, 2, 3], shape: [2, 2]) }),
            ("a shape with a negative extent", { _ = try Tensor([Double](), shape: [2, -2]) }),
            ("zeros of a negative extent", { _ = try Tensor.zeros([-1]) }),
            ("zeros of more elements than an Int counts", { _ = try Tensor.zeros([1 << 40, 1 << 40]) }),
            ("zeros of more bytes than an Int counts", { _ = try Tensor.zeros([1 << 62], dtype: .float64) }),
            ("wrapped memory of a negative extent", {
                _ = try withUnsafeMutableBytes(of: &storage) { try Tensor(wrapping: $0.baseAddress!, shape: [-2], dtype: .float32) }
            }),
            ("wrapped memory that is not aligned", {
                _ = try withUnsafeMutableBytes(of: &storage) { try Tensor(wrapping: $0.baseAddress! + 1, shape: [1], dtype: .float32) }
            }),
            ("a sparse gradient with one index for two rows", {
                _ = try RowSparseGradient(indices: [0], values: Tensor.zeros([2, 3]))
            }),
            ("a sparse gradient with a negative row", { _ = try RowSparseGradient(indices: [-1], values: Tensor.zeros([1, 3])) }),
        ]
        for (what, make) in cases {
            let error = #expect(throws: OptimError.self, "\(what) was accepted") { try make() }
            #expect(error?.kind == .invalidArgument, "\(what): \(String(describing: error))")
        }
    }

    @Test func aRefusedCopyLeavesTheTensorAsItWas() throws {
        let tensor = try Tensor([1.0, 2, 3, 4], shape: [2, 2])
        let before = bytes(of: tensor)
        for (what, source) in [("another shape", try Tensor([5.0, 6, 7, 8])),
                               ("another dtype", try Tensor([5.0, 6, 7, 8], shape: [2, 2], dtype: .float64))] {
            #expect(throws: OptimError.self, "a copy from \(what) was accepted") { try tensor.copy(from: source) }
            #expect(bytes(of: tensor) == before, "a copy from \(what) changed the tensor")
        }
    }

    @Test func refusedExecutionsThrow() throws {
        var cases: [(String, OptimError.Kind, () throws -> Void)] = [
            ("no thread", .invalidArgument, { _ = try Execution(threads: 0) }),
            ("a negative thread count", .invalidArgument, { _ = try Execution(threads: -2) }),
            ("a negative serial threshold", .invalidArgument, { _ = try Execution(serialThreshold: -1) }),
            ("a chunk of no element", .invalidArgument, { _ = try Execution(chunkElements: 0) }),
            ("a probe of no element", .invalidArgument, {
                _ = try BandwidthProbe.measure(elements: 0, execution: Execution(threads: 1))
            }),
            ("a probe of no repetition", .invalidArgument, {
                _ = try BandwidthProbe.measure(elements: 16, execution: Execution(threads: 1), repetitions: 0)
            }),
        ]
        // Tiers this CPU does not run (none on an AVX-512 machine).
        for tier in InstructionSet.allCases where tier > .best {
            cases.append(("the \(tier) tier", .unavailable, { _ = try Execution(instructionSet: tier) }))
        }
        for (what, kind, make) in cases {
            let error = #expect(throws: OptimError.self, "\(what) was accepted") { try make() }
            #expect(error?.kind == kind, "\(what): \(String(describing: error))")
        }
    }

    /// An execution the environment asks for and the library cannot use is refused where it is
    /// read, by the first optimizer built without an execution. The environment belongs to the
    /// whole process, which runs other tests meanwhile: a child process (the checkpoint writer,
    /// whose SGD reads it) gets the values instead, and must fail with the message before it
    /// writes anything.
    @Test(arguments: [("OPTIM_NUM_THREADS", "0"), ("OPTIM_NUM_THREADS", "many"), ("OPTIM_BACKEND", "gpu"),
                      ("OPTIM_ISA", "avx1024")])
    func anExecutionTheEnvironmentAsksForWronglyIsRefused(name: String, value: String) throws {
        let folder = FileManager.default.temporaryDirectory
            .appendingPathComponent("optim-environment-\(getpid())-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let checkpoint = folder.appendingPathComponent("run.safetensors")
        let errors = folder.appendingPathComponent("errors")
        _ = FileManager.default.createFile(atPath: errors.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CheckpointTests.writerPath)
        process.arguments = [checkpoint.path, "1", "16"]
        process.environment = ProcessInfo.processInfo.environment.merging([name: value]) { $1 }
        process.standardError = try FileHandle(forWritingTo: errors)
        try process.run()
        process.waitUntilExit()
        let message = try String(contentsOf: errors, encoding: .utf8)
        #expect(process.terminationReason == .exit && process.terminationStatus == 1, "\(name)=\(value): \(message)")
        #expect(message.contains(name) && message.contains(value), "\(name)=\(value): \(message)")
        #expect(!FileManager.default.fileExists(atPath: checkpoint.path))
    }

    /// Each multi-tensor operation refuses lists that do not match (or a tensor written twice,
    /// or a bound or order out of its domain) and leaves every tensor as it was.
    @Test func refusedMultiTensorOperationsChangeNothing() throws {
        let execution = try Execution(threads: 2, serialThreshold: 0)
        let a = try Tensor([1.0, 2, 3]), b = try Tensor([4.0, 5], dtype: .float64)
        let c = try Tensor([7.0, 8, 9]), other = try Tensor([1.0, 1, 1, 1])
        let tensors = [a, b, c, other]
        let before = tensors.map { bytes(of: $0) }
        let cases: [(String, () throws -> Void)] = [
            ("add, a shorter list", { try Foreach.add([a, b], [a], execution: execution) }),
            ("add, a scalar to a tensor twice", { try Foreach.add([a, a], scalar: 1, execution: execution) }),
            ("scale, a tensor twice", { try Foreach.scale([a, b, a], by: 2, execution: execution) }),
            ("axpy, another shape", { try Foreach.axpy([a, b], alpha: 1, [other, b], beta: 0.5, execution: execution) }),
            ("addcmul, a third list shorter", { try Foreach.addcmul([a, b], [a, b], [a], execution: execution) }),
            ("addcdiv, another dtype", {
                try Foreach.addcdiv([a], [a], [Tensor([1.0, 1, 1], dtype: .float64)], execution: execution)
            }),
            ("lerp, a written tensor read at another index", {
                try Foreach.lerp([a, c], [c, Tensor.zeros([3])], weight: 0.5, execution: execution)
            }),
            ("sqrt, a tensor twice", { try Foreach.sqrt([b, b], execution: execution) }),
            ("maximum, another shape", { try Foreach.maximum([a], [other], execution: execution) }),
            ("clamp, a NaN bound", { try Foreach.clamp([a], min: .nan, max: 1, execution: execution) }),
            ("clamp, min above max", { try Foreach.clamp([a], min: 2, max: 1, execution: execution) }),
            ("copy, another dtype", { try Foreach.copy([a], from: [Tensor([1.0, 1, 1], dtype: .bfloat16)], execution: execution) }),
            ("zero, a tensor twice", { try Foreach.zero([other, a, other], execution: execution) }),
            ("dot, lists of different lengths", { _ = try Foreach.dot([a], [a, b], execution: execution) }),
            ("dots, another shape", { _ = try Foreach.dots([a], [other], execution: execution) }),
            ("norm of order 0", { _ = try Foreach.norm([a], p: 0, execution: execution) }),
            ("norms of a NaN order", { _ = try Foreach.norms([a], p: .nan, execution: execution) }),
        ]
        for (what, call) in cases {
            let error = #expect(throws: OptimError.self, "\(what) was accepted") { try call() }
            #expect(error?.kind == .invalidArgument, "\(what): \(String(describing: error))")
            #expect(tensors.map { bytes(of: $0) } == before, "\(what) changed a tensor")
        }
    }

    /// Clipping refuses a bound or order out of its domain and a gradient shared by two
    /// parameters, and leaves the gradients as they were.
    @Test func refusedClippingChangesNoGradient() throws {
        let execution = try Execution(threads: 1)
        let shared = try Tensor([3.0, -4])
        let parameters = try (0..<3).map { _ in try Tensor.zeros([2]) }
        parameters[0].grad = try Tensor([10.0, -20])
        parameters[1].grad = shared
        let sharing = try Tensor.zeros([2])
        sharing.grad = shared
        let gradients = [parameters[0].grad!, shared]
        let before = gradients.map { bytes(of: $0) }
        let cases: [(String, () throws -> Void)] = [
            ("clipGradNorm to a negative norm", { _ = try clipGradNorm(parameters, maxNorm: -1, execution: execution) }),
            ("clipGradNorm to a NaN norm", { _ = try clipGradNorm(parameters, maxNorm: .nan, execution: execution) }),
            ("clipGradNorm of order -1", { _ = try clipGradNorm(parameters, maxNorm: 1, normType: -1, execution: execution) }),
            ("clipGradNorm of a shared gradient", {
                _ = try clipGradNorm(parameters + [sharing], maxNorm: 1, execution: execution)
            }),
            ("clipGradValue to a negative value", { try clipGradValue(parameters, clipValue: -1, execution: execution) }),
            ("clipGradValue to NaN", { try clipGradValue(parameters, clipValue: .nan, execution: execution) }),
            ("clipGradValue of a shared gradient", { try clipGradValue(parameters + [sharing], clipValue: 1, execution: execution) }),
        ]
        for (what, call) in cases {
            let error = #expect(throws: OptimError.self, "\(what) was accepted") { try call() }
            #expect(error?.kind == .invalidArgument, "\(what): \(String(describing: error))")
            #expect(gradients.map { bytes(of: $0) } == before, "\(what) changed a gradient")
        }
    }

    /// An average refuses a decay out of [0, 1], and parameters that are not the ones it
    /// averages; a refused update changes neither the averages nor their count.
    @Test func refusedAveragesChangeNothing() throws {
        let parameters = try [Tensor([1.0, 2]), Tensor([3.0, 4])]
        for decay in [-0.1, 1.5, .nan] {
            let error = #expect(throws: OptimError.self, "decay \(decay) was accepted") {
                _ = try AveragedParameters(parameters, strategy: .ema(decay: decay))
            }
            #expect(error?.kind == .invalidOption)
        }
        for strategy in [AveragedParameters.Strategy.swa, .ema(decay: 0.9)] {
            let average = try AveragedParameters(parameters, strategy: strategy, execution: Execution(threads: 1))
            try average.update(from: parameters)
            let before = average.averages.map { bytes(of: $0) }
            let cases: [(String, [Tensor])] = [
                ("one parameter less", [parameters[0]]),
                ("a parameter of another shape", [parameters[0], try Tensor([3.0, 4, 5])]),
                ("a parameter of another dtype", [parameters[0], try Tensor([3.0, 4], dtype: .float64)]),
                ("an average among the parameters", [average.averages[1], parameters[1]]),
            ]
            for (what, given) in cases {
                let error = #expect(throws: OptimError.self, "\(strategy): \(what) was accepted") { try average.update(from: given) }
                #expect(error?.kind == .invalidArgument)
                #expect(average.averages.map { bytes(of: $0) } == before, "\(strategy): \(what) changed an average")
                #expect(average.count == 1)
            }
        }
    }

    /// A save refused before it wrote (a tensor without a name, a state tensor whose values do
    /// not fill its shape) or when it cannot put its file in place (a folder at the path)
    /// leaves what was at the path and no partial file.
    @Test func aRefusedSaveLeavesWhatWasThere() throws {
        let (path, bytes, adam, parameters) = try CheckpointTests.adamCheckpoint()
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent()
        let blocker = folder.appendingPathComponent("a-folder-\(UInt64.random(in: 0...UInt64.max)).safetensors").path
        try FileManager.default.createDirectory(atPath: blocker, withIntermediateDirectories: false)
        defer {
            try? FileManager.default.removeItem(atPath: path)
            try? FileManager.default.removeItem(atPath: blocker)
        }
        var short = adam.stateDict()
        short.state[0]?["exp_avg"] = .tensor(TensorValue(dtype: .float32, shape: [3, 4], data: [1, 2, 3]))
        let state = adam.stateDict()
        let cases: [(String, String, () throws -> Void)] = [
            ("a model tensor without a name", path, { try Checkpoint.save(adam, to: path, tensors: ["": parameters[0]]) }),
            ("a state tensor short of its shape", path, {
                try Checkpoint.write(Checkpoint.Contents(optimizer: "Adam", stateDict: short), to: path)
            }),
            ("a folder at the path", blocker, { try Checkpoint.save(adam, to: blocker) }),
        ]
        for (what, target, save) in cases {
            let error = #expect(throws: OptimError.self, "a save with \(what) succeeded") { try save() }
            #expect(error?.message.isEmpty == false)
            #expect(adam.stateDict() == state)
            let partials = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter {
                $0.hasPrefix(URL(fileURLWithPath: target).lastPathComponent) && $0.hasSuffix(".partial")
            }
            #expect(partials.isEmpty, "a save with \(what) left \(partials)")
        }
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: path))) == bytes)
        var isFolder: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: blocker, isDirectory: &isFolder) && isFolder.boolValue)
    }
}
