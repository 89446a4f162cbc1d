/// What the engine needs to know about an element-wise optimizer: its kernel rule, state
/// slots, option validation, and how options and the step count become the rule's flags and
/// per-tensor scalars.
protocol ElementwiseAlgorithm {
    associatedtype Options: TorchNamedOptions
    associatedtype Scalars
    /// Scalar state a tensor carries from step to step (ASGD's eta and mu, NAdam's product of
    /// momentum coefficients), kept per parameter as torch keeps it, under torch's names.
    associatedtype TensorState: RuleScalarState = NoScalarState

    /// The rule's loops; `Scalars` follow from it.
    static var rule: KernelRule<Scalars> { get }
    /// torch's names of the state slots, in slot order.
    static var stateNames: [String] { get }
    static func validate(_ options: Options) throws
    /// Whether a slot holds state under these options (default: every slot).
    static func usesSlot(_ slot: Int, _ options: Options) -> Bool
    /// Flags added on the step that created a parameter's state (the rule then initializes it).
    static func initializationFlags(_ options: Options) -> UInt32
    /// The scalar state of a parameter at its first update, from its group's options and the
    /// optimizer's defaults (the options it was built with).
    static func initialTensorState(_ options: Options, defaults: Options) -> TensorState
    /// The rule's flags and scalars for a tensor's `step`-th update (counted from 1); advances
    /// the tensor's scalar state to what it is after that update.
    static func prepare(_ options: Options, step: Int, state: inout TensorState) -> (flags: UInt32, scalars: Scalars)
    /// Whether torch keeps `step` as a plain integer (SparseAdam) rather than a float32 tensor.
    static var stepIsInteger: Bool { get }
    /// torch's name of the optimizer, for messages.
    static var name: String { get }
    /// Whether the optimizer takes row-sparse gradients (``Tensor/sparseGrad``).
    static var sparseGradients: SparseGradientSupport { get }
    /// The rule of a sparse update; its flags are the dense rule's maximize flag.
    static var sparseRule: KernelRule<Scalars>? { get }
    /// Throws when these options do not allow a sparse gradient.
    static func validateSparse(_ options: Options) throws
    /// The value a state slot starts at when the engine creates it, from the options the
    /// optimizer was built with (torch fills Adagrad's sum from its constructor's value whatever
    /// the group says). Rules whose first update initializes their state say so by flags instead.
    static func initialValue(slot: Int, _ options: Options) -> Double
    /// Whether the optimizer creates the state of the parameters it is built with at once, as
    /// torch's Adagrad does, rather than at each parameter's first update.
    static var createsStateWhenBuilt: Bool { get }
    /// Whether torch keeps a `step` count in a parameter's state (all but SGD do).
    static var keepsStepCount: Bool { get }
    /// Whether the step count and the scalar state belong to the parameter group and advance at
    /// every step, whether or not a parameter of the group has a gradient (as pytorch-optimizer
    /// and schedulefree keep them), rather than to each parameter, advancing at its updates
    /// (as torch keeps them).
    static var countsStepsPerGroup: Bool { get }
}

extension ElementwiseAlgorithm where Options: TorchFieldOptions {
    static func validate(_ options: Options) throws { try options.validateFields() }
}

/// The scalar state of a rule that keeps none.
typealias NoTensorState = NoScalarState

extension ElementwiseAlgorithm where Self: AnyObject {
    /// A built-in optimizer is its own algorithm; torch names it as its class is named.
    static var name: String { String(describing: self) }
}

extension ElementwiseAlgorithm {
    static func initialTensorState(_ options: Options, defaults: Options) -> TensorState { TensorState() }
    static func usesSlot(_ slot: Int, _ options: Options) -> Bool { true }
    static var countsStepsPerGroup: Bool { false }
    static func initializationFlags(_ options: Options) -> UInt32 { 0 }
    static var keepsStepCount: Bool { true }
    static var sparseGradients: SparseGradientSupport { .refused }
    static var stepIsInteger: Bool { false }
    static var sparseRule: KernelRule<Scalars>? { nil }
    static func validateSparse(_ options: Options) throws {}
    static func initialValue(slot: Int, _ options: Options) -> Double { 0 }
    static var createsStateWhenBuilt: Bool { false }
}

/// How an optimizer takes row-sparse gradients.
public enum SparseGradientSupport: String, Sendable {
    /// Dense gradients only (a sparse one is refused).
    case refused
    /// Dense or sparse (Adagrad).
    case accepted
    /// Sparse gradients only (SparseAdam).
    case required
}

/// The state an optimizer keeps for one parameter: the number of updates it received, its
/// state tensors and its scalar state, named as torch names them. The tensors are the
/// optimizer's own: changing them changes the optimizer's state.
public struct ParameterState: @unchecked Sendable {
    /// Updates applied to this parameter so far.
    public let step: Int
    /// The state tensors that exist, by torch's names (for example `exp_avg`).
    public let tensors: [String: Tensor]
    /// Scalar state by torch's names (for example ASGD's `eta` and `mu`, NAdam's `mu_product`).
    public let values: [String: Double]

    /// A state of `step` updates with these tensors and scalar values, by torch's names.
    public init(step: Int, tensors: [String: Tensor], values: [String: Double] = [:]) {
        self.step = step
        self.tensors = tensors
        self.values = values
    }

    /// The state tensor torch calls `name`, if it exists.
    public subscript(name: String) -> Tensor? { tensors[name] }
}

/// The shared core of the element-wise optimizers: parameter groups, per-parameter state,
/// gradient checks, the launch buffers, and both code paths.
///
/// A step builds the launch's tensor descriptors once and then, as long as every parameter
/// keeps the same gradient tensor (or has none, as before) and the options do not change, only
/// advances step counts and rewrites one scalar block per run of tensors that share a group,
/// a step count and a scalar state: the Swift side of a step costs a few nanoseconds per tensor.
final class ElementwiseEngine<Algorithm: ElementwiseAlgorithm> {
    var groups: [ParameterGroup<Algorithm.Options>]
    private(set) var parameters: [Tensor] = []
    private(set) var groupOf: [Int] = []
    var stepCounts: [Int] = []
    var tensorStates: [Algorithm.TensorState?] = []
    /// Steps taken and scalar state of each group, where they belong to the group
    /// (`Algorithm.countsStepsPerGroup`).
    var groupSteps: [Int] = []
    var groupStates: [Algorithm.TensorState] = []
    /// `slotCount` state tensors per parameter, in parameter order.
    var slots: [Tensor?] = []
    let slotCount = Algorithm.stateNames.count

    /// The options the optimizer was built with.
    let defaults: Algorithm.Options
    var execution: Execution { didSet { launchIsCurrent = false; tablesISA = nil } }
    var implementation: Implementation

    // The launch of the previous step, reused while it stays valid.
    private let buffers = LaunchBuffers()
    private var launchIsCurrent = false
    /// For each parameter, whether it is in the launch (it had a gradient when it was built).
    private var inLaunch: [Bool] = []
    /// For each parameter, its `gradAssignments` when its gradient was last checked.
    private var checkedGradAssignments: [UInt64] = []
    private var launchPositions: [Int] = []
    /// The active parameters in launch order.
    private var active: [Int] = []

    /// A run of consecutive launch positions that share a group, a step count and a scalar
    /// state, and so one scalar block and one set of flags.
    private struct Block {
        var group: Int
        var step: Int
        var stateBefore: Algorithm.TensorState
        var stateAfter: Algorithm.TensorState
        var flags: UInt32
        var positions: Range<Int>
    }
    private var blocks: [Block] = []
    /// Whether the last step created state: its kernels carry initialization flags.
    private var hadFreshState = false
    private var launchTotal = 0
    private var tables: [UnsafeBufferPointer<SegmentFunction?>] = []
    private var tablesISA: InstructionSet?

    init(groups specs: [ParameterGroupSpec<Algorithm.Options>], defaults: Algorithm.Options,
         execution: Execution?, implementation: Implementation) throws {
        self.execution = try execution ?? Execution.fromEnvironment()
        self.implementation = implementation
        self.defaults = defaults
        self.groups = []
        guard !specs.isEmpty else {
            throw OptimError(.invalidArgument, "optimizer got an empty parameter list")
        }
        try Algorithm.validate(defaults)
        var seen = Set<ObjectIdentifier>()
        for spec in specs {
            try addGroup(spec, defaults: defaults, seen: &seen)
        }
        if Algorithm.createsStateWhenBuilt {
            for (slot, tensor) in try makeState(for: Array(parameters.indices)) { slots[slot] = tensor }
        }
    }

    private func addGroup(_ spec: ParameterGroupSpec<Algorithm.Options>, defaults: Algorithm.Options,
                          seen: inout Set<ObjectIdentifier>) throws {
        var options = defaults
        spec.configure(&options)
        try Algorithm.validate(options)
        var inGroup = Set<ObjectIdentifier>()
        for parameter in spec.parameters {
            guard !seen.contains(ObjectIdentifier(parameter)), inGroup.insert(ObjectIdentifier(parameter)).inserted else {
                throw OptimError(.invalidArgument,
                                 "some parameters appear more than once in the parameter groups (\(parameter))")
            }
        }
        seen.formUnion(inGroup)
        let index = groups.count
        let count = spec.parameters.count
        groups.append(ParameterGroup(parameters: spec.parameters, options: options, names: spec.names))
        groupSteps.append(0)
        groupStates.append(Algorithm.initialTensorState(options, defaults: defaults))
        parameters.append(contentsOf: spec.parameters)
        groupOf.append(contentsOf: repeatElement(index, count: count))
        stepCounts.append(contentsOf: repeatElement(0, count: count))
        tensorStates.append(contentsOf: repeatElement(nil, count: count))
        slots.append(contentsOf: repeatElement(nil, count: count * slotCount))
        inLaunch.append(contentsOf: repeatElement(false, count: count))
        checkedGradAssignments.append(contentsOf: spec.parameters.map { $0.gradAssignments &- 1 })
        launchPositions.append(contentsOf: repeatElement(-1, count: count))
        launchIsCurrent = false
    }

    func addGroup(_ spec: ParameterGroupSpec<Algorithm.Options>, defaults: Algorithm.Options) throws {
        var seen = Set(parameters.map(ObjectIdentifier.init))
        try addGroup(spec, defaults: defaults, seen: &seen)
    }

    func setOptions(_ options: Algorithm.Options, group: Int) throws {
        guard groups.indices.contains(group) else {
            throw OptimError(.invalidArgument, "no parameter group \(group): there are \(groups.count)")
        }
        try Algorithm.validate(options)
        groups[group].options = options
        launchIsCurrent = false
    }

    /// Whether parameter `index` has state: it was updated, or its state was made before that.
    func holdsState(_ index: Int) -> Bool {
        stepCounts[index] > 0 || (0..<slotCount).contains { slots[index * slotCount + $0] != nil }
    }

    func state(for parameter: Tensor) -> ParameterState? {
        guard let index = parameters.firstIndex(where: { $0 === parameter }), holdsState(index) else { return nil }
        var tensors: [String: Tensor] = [:]
        for slot in 0..<slotCount {
            if let tensor = slots[index * slotCount + slot] { tensors[Algorithm.stateNames[slot]] = tensor }
        }
        // Scalar state of the group is not the parameter's.
        let values = Algorithm.countsStepsPerGroup ? [:] : tensorStates[index]?.values ?? [:]
        return ParameterState(step: stepCounts[index], tensors: tensors, values: values)
    }

    /// Makes the next step rebuild its launch (state or options changed under it).
    func invalidateLaunch() { launchIsCurrent = false }

    func zeroGrad(setToNone: Bool) {
        for parameter in parameters { parameter.zeroGradient(setToNone: setToNone) }
    }

    func step() throws {
        // Group step counts advance for every group at every step: the launch is rebuilt.
        if !(launchIsCurrent && !Algorithm.countsStepsPerGroup && reuseLaunch()) {
            try buildLaunch()
        }
        if !active.isEmpty {
            switch implementation {
            case .multiTensor:
                buffers.run(range: 0..<launchTotal, execution: execution)
            case .forLoop:
                let offsets = buffers.offsets
                for position in active.indices {
                    buffers.run(range: Int(offsets[position])..<Int(offsets[position + 1]), execution: execution)
                }
            }
        }
        if !sparseActive.isEmpty { runSparseUpdates() }
    }

    /// Parameters whose row-sparse gradient this step applies (checked by `buildLaunch`).
    private(set) var sparseActive: [Int] = []
    let sparseBuffers = LaunchBuffers()

    /// Advances the previous launch when the same parameters have a gradient as then, each of
    /// its parameter's shape and dtype; a gradient stored elsewhere than the launch's is
    /// re-pointed. Returns false when the launch must be rebuilt (which re-checks and reports).
    ///
    /// Every gradient is checked at every step, but a parameter whose `grad` was not assigned
    /// since the last check still holds the gradient checked then (neither a tensor's identity
    /// nor its address would prove it, since a tensor released by the caller can be replaced
    /// by a new one at the same address).
    private func reuseLaunch() -> Bool {
        // Sparse gradients change rows at every step: a step with one rebuilds.
        guard sparseActive.isEmpty else { return false }
        // Parameters are objects of their own, scattered in memory: a step over many small
        // tensors waits on one cache miss per parameter unless it asks ahead. The loop reads one
        // field of each, through buffers rather than the arrays, whose every access would be
        // checked for exclusivity and uniqueness: tens of nanoseconds a tensor.
        let lookahead = 8
        let unchanged = parameters.withUnsafeBufferPointer { parameters in
            checkedGradAssignments.withUnsafeMutableBufferPointer { checked in
                for index in parameters.indices {
                    if index + lookahead < parameters.count { Kernels.prefetchFields(of: parameters[index + lookahead]) }
                    let assignments = parameters[index].gradAssignments
                    if assignments == checked[index] { continue }
                    checked[index] = assignments
                    guard repointGradient(of: parameters[index], index) else { return false }
                }
                return true
            }
        }
        guard unchanged else { return false }
        active.withUnsafeBufferPointer { active in
            stepCounts.withUnsafeMutableBufferPointer { stepCounts in
                for index in active { stepCounts[index] += 1 }
            }
        }
        let stride = MemoryLayout<Algorithm.Scalars>.stride
        let keepsTensorState = Algorithm.TensorState.self != NoTensorState.self
        for number in blocks.indices {
            var block = blocks[number]
            block.step += 1
            block.stateBefore = block.stateAfter
            let prepared = Algorithm.prepare(groups[block.group].options, step: block.step, state: &block.stateAfter)
            (buffers.scalars + number * stride).assumingMemoryBound(to: Algorithm.Scalars.self).pointee = prepared.scalars
            if prepared.flags != block.flags || hadFreshState {
                block.flags = prepared.flags
                for position in block.positions {
                    let index = active[position]
                    buffers.descriptors[position].kernel = tables[parameters[index].dtype.ordinal][Int(block.flags)]
                }
                runsAreStale = true
            }
            if keepsTensorState {
                for position in block.positions { tensorStates[active[position]] = block.stateAfter }
            }
            blocks[number] = block
        }
        hadFreshState = false
        sparseActive.removeAll(keepingCapacity: true)
        if runsAreStale {
            buffers.coalesceRuns(count: active.count, stateSlots: slotCount, chunkElements: execution.chunkElements)
            runsAreStale = false
        }
        return true
    }

    /// Points the launch at the gradient now assigned to parameter `index`, or returns false
    /// when the launch must be rebuilt: the parameter gained or lost a gradient, has a sparse
    /// one, or one of another shape or dtype.
    private func repointGradient(of parameter: Tensor, _ index: Int) -> Bool {
        if parameter.sparseGrad != nil { return false }
        guard let grad = parameter.grad else { return !inLaunch[index] }
        guard inLaunch[index], grad.dtype == parameter.dtype, grad.shape == parameter.shape else { return false }
        let base = UnsafeRawPointer(grad.storage.base)
        let position = launchPositions[index]
        if buffers.descriptors[position].grad != base {
            buffers.descriptors[position].grad = base
            runsAreStale = true
        }
        return true
    }

    /// Whether a descriptor changed since the launch's runs were made.
    private var runsAreStale = false

    /// Checks every gradient, creates missing state, and fills the launch's descriptors.
    private func buildLaunch() throws {
        // Check everything first: a step that throws must change nothing but the launch
        // buffers, which the next step then rebuilds.
        launchIsCurrent = false
        active.removeAll(keepingCapacity: true)
        sparseActive.removeAll(keepingCapacity: true)
        for index in parameters.indices {
            let parameter = parameters[index]
            if let sparse = parameter.sparseGrad {
                guard parameter.grad == nil else {
                    throw OptimError(.gradientMismatch, """
                        parameter \(index) (\(parameter)) has both a dense and a sparse gradient; set one of them
                        """)
                }
                guard Algorithm.sparseGradients != .refused else {
                    throw OptimError(.gradientMismatch, """
                        \(Algorithm.name) does not support sparse gradients (parameter \(index), \(parameter)): \
                        use Adagrad or SparseAdam, or a dense gradient
                        """)
                }
                try Algorithm.validateSparse(groups[groupOf[index]].options)
                try sparse.check(against: parameter, index: index)
                sparseActive.append(index)
                continue
            }
            guard let grad = parameter.grad else { continue }
            guard Algorithm.sparseGradients != .required else {
                throw OptimError(.gradientMismatch, """
                    \(Algorithm.name) does not support dense gradients (parameter \(index), \(parameter)): set a \
                    sparseGrad, or use Adam for dense gradients
                    """)
            }
            guard grad.shape == parameter.shape, grad.dtype == parameter.dtype else {
                throw OptimError(.gradientMismatch, """
                    the gradient of parameter \(index) (\(parameter)) is a \(grad.dtype) tensor of shape \
                    \(grad.shape); it must have the parameter's dtype and shape
                    """)
            }
            active.append(index)
        }
        freshState = try allocateMissingState()
        coalescedSparse = try coalesceSparseGradients()
        refreshTables()
        hadFreshState = false
        for index in inLaunch.indices {
            inLaunch[index] = false
            launchPositions[index] = -1
            checkedGradAssignments[index] = parameters[index].gradAssignments
        }
        blocks.removeAll(keepingCapacity: true)

        let stride = MemoryLayout<Algorithm.Scalars>.stride
        buffers.reserve(tensors: active.count, scalarStride: stride)
        let offsets = buffers.offsets
        let perGroup = Algorithm.countsStepsPerGroup
        var total = 0
        offsets[0] = 0
        for (position, index) in active.enumerated() {
            let group = groupOf[index]
            let options = groups[group].options
            let parameter = parameters[index]
            let grad = parameter.grad!
            var fresh = false
            for slot in 0..<slotCount {
                guard let tensor = freshState.removeValue(forKey: index * slotCount + slot) else { continue }
                slots[index * slotCount + slot] = tensor
                fresh = true
            }
            fresh = fresh || stepCounts[index] == 0
            stepCounts[index] = perGroup ? groupSteps[group] + 1 : stepCounts[index] + 1
            let stateBefore = perGroup ? groupStates[group]
                : tensorStates[index] ?? Algorithm.initialTensorState(options, defaults: defaults)
            if let last = blocks.last, last.group == group, last.step == stepCounts[index], last.stateBefore == stateBefore {
                blocks[blocks.count - 1].positions = last.positions.lowerBound..<(position + 1)
            } else {
                var stateAfter = stateBefore
                let prepared = Algorithm.prepare(options, step: stepCounts[index], state: &stateAfter)
                (buffers.scalars + blocks.count * stride).bindMemory(to: Algorithm.Scalars.self, capacity: 1)
                    .initialize(to: prepared.scalars)
                blocks.append(Block(group: group, step: stepCounts[index], stateBefore: stateBefore,
                                    stateAfter: stateAfter, flags: prepared.flags, positions: position..<(position + 1)))
            }
            let block = blocks[blocks.count - 1]
            tensorStates[index] = block.stateAfter
            let flags = block.flags | (fresh ? Algorithm.initializationFlags(options) : 0)
            hadFreshState = hadFreshState || fresh

            var descriptor = KernelTensor()
            descriptor.param = parameter.storage.base
            descriptor.grad = UnsafeRawPointer(grad.storage.base)
            withUnsafeMutableBytes(of: &descriptor.state) { raw in
                let pointers = raw.bindMemory(to: UnsafeMutableRawPointer?.self)
                for slot in 0..<slotCount { pointers[slot] = slots[index * slotCount + slot]?.storage.base }
            }
            descriptor.count = Int64(parameter.count)
            descriptor.scalars = UnsafeRawPointer(buffers.scalars + (blocks.count - 1) * stride)
            descriptor.kernel = tables[parameter.dtype.ordinal][Int(flags)]
            buffers.descriptors[position] = descriptor
            buffers.elementBytes[position] = parameter.dtype.byteWidth

            inLaunch[index] = true
            launchPositions[index] = position
            total += parameter.count
            offsets[position + 1] = Int64(total)
        }
        launchTotal = total
        if perGroup { advanceGroups() }
        buffers.coalesceRuns(count: active.count, stateSlots: slotCount, chunkElements: execution.chunkElements)
        runsAreStale = false
        launchIsCurrent = true
    }

    /// Advances every group's step count and scalar state by one step (the groups with a
    /// parameter in the launch to the state their block computed).
    private func advanceGroups() {
        for group in groups.indices {
            groupSteps[group] += 1
            if let block = blocks.first(where: { $0.group == group }) {
                groupStates[group] = block.stateAfter
            } else {
                _ = Algorithm.prepare(groups[group].options, step: groupSteps[group], state: &groupStates[group])
            }
        }
    }

    /// State tensors the step creates, by slot position (`index * slotCount + slot`), made
    /// before anything changes: running out of memory then fails the step with nothing changed.
    /// A sparse update's state starts at its rule's initial value.
    private var freshState: [Int: Tensor] = [:]
    /// The row-sparse gradients of `sparseActive` with repeated rows summed, made with the state.
    private var coalescedSparse: [(rows: [Int], grad: Tensor)] = []

    private func allocateMissingState() throws -> [Int: Tensor] {
        // Joining the lists would allocate at every rebuild, and a launch is rebuilt at every
        // step of a sparse gradient or of steps counted per group.
        try makeState(for: sparseActive.isEmpty ? active : active.isEmpty ? sparseActive : active + sparseActive)
    }

    /// The state tensors the parameters at `indices` lack under their groups' options, at their
    /// initial values, by slot position.
    private func makeState(for indices: [Int]) throws -> [Int: Tensor] {
        var fresh: [Int: Tensor] = [:]
        // Slot by slot, each slot's tensors cut from one allocation: they follow one another in
        // memory with nothing between them, a run the hardware prefetchers follow from one small
        // tensor into the next, in as few pages (huge ones, from 2 MiB) and cache lines as the
        // elements need. Each tensor keeps its slot's allocation alive.
        for slot in 0..<slotCount {
            let needing = indices.filter {
                slots[$0 * slotCount + slot] == nil && Algorithm.usesSlot(slot, groups[groupOf[$0]].options)
            }
            let tensors = try stateTensors(for: needing)
            let value = Algorithm.initialValue(slot: slot, defaults)
            if value != 0, !tensors.isEmpty { try Foreach.add(tensors, scalar: value, execution: execution) }
            for (index, tensor) in zip(needing, tensors) { fresh[index * slotCount + slot] = tensor }
        }
        return fresh
    }

    /// Zeroed state tensors for the parameters at `indices` (in increasing order), one for each,
    /// cut from one allocation. Where two of the parameters follow one another in memory (cut
    /// from one buffer, ``Tensor/packedZeros(_:dtype:)``), so do their state tensors, and the
    /// launch runs them as one; elsewhere each starts on a cache line.
    func stateTensors(for indices: [Int]) throws -> [Tensor] {
        var previous: (end: UnsafeMutableRawPointer, dtype: DType)?
        let specs = indices.map { index in
            let parameter = parameters[index]
            defer { previous = (parameter.baseAddress + parameter.byteCount, parameter.dtype) }
            let follows = previous.map { $0.end == parameter.baseAddress && $0.dtype == parameter.dtype } ?? false
            return (parameter.shape, parameter.dtype, followsPrevious: follows)
        }
        return try Tensor.zerosSharingOneAllocation(specs)
    }

    /// Each sparse gradient with its rows distinct and increasing, summing repeated rows.
    private func coalesceSparseGradients() throws -> [(rows: [Int], grad: Tensor)] {
        // Refilled in place: a new array at every step would allocate.
        var coalesced = coalescedSparse
        coalescedSparse = []
        coalesced.removeAll(keepingCapacity: true)
        for index in sparseActive { coalesced.append(try coalesce(index)) }
        return coalesced
    }

    private func coalesce(_ index: Int) throws -> (rows: [Int], grad: Tensor) {
        let parameter = parameters[index]
        guard let sparse = parameter.sparseGrad else { return ([], try Tensor.zeros([0], dtype: parameter.dtype)) }
        // Distinct rows in increasing order are already coalesced.
        if zip(sparse.indices, sparse.indices.dropFirst()).allSatisfy({ $0 < $1 }) {
            return (sparse.indices, sparse.values)
        }
        let plan = sparse.coalescingPlan()
        let width = parameter.shape.dropFirst().reduce(1, *)
        let grad = try Tensor.zeros([plan.rows.count] + Array(parameter.shape.dropFirst()), dtype: parameter.dtype)
        if !plan.rows.isEmpty {
            Kernels.sumRows(sparse.values, order: plan.order, starts: plan.starts, width: width, into: grad)
        }
        return (plan.rows, grad)
    }

    /// Applies the row-sparse gradients of `sparseActive` (already checked): creates missing
    /// state at its initial value, advances step counts and scalar state, sums repeated rows,
    /// and runs the sparse rule over the touched rows, one launch tensor per row, so that the
    /// rows spread over threads like the chunks of a dense launch.
    private func runSparseUpdates() {
        guard let rule = Algorithm.sparseRule else { return }
        let rowCount = coalescedSparse.reduce(0) { $0 + $1.rows.count }
        let stride = MemoryLayout<Algorithm.Scalars>.stride
        sparseBuffers.reserve(tensors: max(rowCount, sparseActive.count), scalarStride: stride)
        if sparseTablesISA != execution.instructionSet {
            sparseTables = DType.allCases.map { rule.table($0, execution.instructionSet) }
            sparseTablesISA = execution.instructionSet
        }
        let offsets = sparseBuffers.offsets
        offsets[0] = 0
        var position = 0
        parameterStarts.removeAll(keepingCapacity: true)
        for (number, index) in sparseActive.enumerated() {
            let options = groups[groupOf[index]].options
            let parameter = parameters[index]
            for slot in 0..<slotCount {
                guard let tensor = freshState.removeValue(forKey: index * slotCount + slot) else { continue }
                slots[index * slotCount + slot] = tensor
            }
            stepCounts[index] += 1
            var tensorState = tensorStates[index] ?? Algorithm.initialTensorState(options, defaults: defaults)
            let prepared = Algorithm.prepare(options, step: stepCounts[index], state: &tensorState)
            tensorStates[index] = tensorState
            let scalars = sparseBuffers.scalars + number * stride
            scalars.bindMemory(to: Algorithm.Scalars.self, capacity: 1).initialize(to: prepared.scalars)
            let kernel = sparseTables[parameter.dtype.ordinal][Int(prepared.flags & RuleFlags.maximize)]
            let (rows, grad) = coalescedSparse[number]
            let rowBytes = parameter.shape.dropFirst().reduce(1, *) * parameter.dtype.byteWidth
            parameterStarts.append(position)
            let width = Int64(rowBytes / parameter.dtype.byteWidth)
            var u = 0
            while u < rows.count {
                // Consecutive rows are contiguous in the parameter, the state and the summed
                // gradient: one launch tensor covers each run of them.
                var end = u + 1
                while end < rows.count && rows[end] == rows[end - 1] + 1 { end += 1 }
                let row = rows[u]
                var descriptor = KernelTensor()
                descriptor.param = parameter.storage.base + row * rowBytes
                descriptor.grad = UnsafeRawPointer(grad.storage.base + u * rowBytes)
                withUnsafeMutableBytes(of: &descriptor.state) { raw in
                    let pointers = raw.bindMemory(to: UnsafeMutableRawPointer?.self)
                    for slot in 0..<slotCount { pointers[slot] = slots[index * slotCount + slot].map { $0.storage.base + row * rowBytes } }
                }
                descriptor.count = width * Int64(end - u)
                descriptor.scalars = UnsafeRawPointer(scalars)
                descriptor.kernel = kernel
                sparseBuffers.descriptors[position] = descriptor
                offsets[position + 1] = offsets[position] + descriptor.count
                position += 1
                u = end
            }
        }
        parameterStarts.append(position)
        sparseBuffers.preparePlan(count: position, chunkElements: execution.chunkElements)
        // The summed gradients stay alive in `coalescedSparse` until the launch is done.
        switch implementation {
        case .multiTensor:
            sparseBuffers.run(range: 0..<Int(offsets[position]), execution: execution)
        case .forLoop:
            for number in sparseActive.indices {
                let range = Int(offsets[parameterStarts[number]])..<Int(offsets[parameterStarts[number + 1]])
                if !range.isEmpty { sparseBuffers.run(range: range, execution: execution) }
            }
        }
        // Emptied with its capacity kept, and the gradients it held released.
        coalescedSparse.removeAll(keepingCapacity: true)
    }

    // Kept from step to step, since a sparse update rebuilds its launch at every step.
    private var sparseTables: [UnsafeBufferPointer<SegmentFunction?>] = []
    private var sparseTablesISA: InstructionSet?
    private var parameterStarts: [Int] = []

    private func refreshTables() {
        guard tablesISA != execution.instructionSet else { return }
        tables = DType.allCases.map { Algorithm.rule.table($0, execution.instructionSet) }
        tablesISA = execution.instructionSet
    }
}

extension DType {
    /// Position in `allCases`, for table lookups.
    var ordinal: Int {
        switch self {
        case .float32: 0
        case .float64: 1
        case .float16: 2
        case .bfloat16: 3
        }
    }
}
