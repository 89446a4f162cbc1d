/// What the engine needs to know about an element-wise optimizer: its kernel rule, state
/// slots, option validation, and how options and the step count become the rule's flags and
/// per-tensor scalars.
protocol ElementwiseAlgorithm {
    associatedtype Options: OptimizerOptions
    associatedtype Scalars
    /// Scalar state a tensor carries from step to step (ASGD's eta and mu, NAdam's product of
    /// momentum coefficients), kept per parameter as torch keeps it.
    associatedtype TensorState: Equatable = NoTensorState

    static var rule: KernelRule { get }
    /// torch's names of the state slots, in slot order.
    static var stateNames: [String] { get }
    static func validate(_ options: Options) throws
    /// Whether a slot holds state under these options.
    static func usesSlot(_ slot: Int, _ options: Options) -> Bool
    /// Flags added on the step that created a parameter's state (the rule then initializes it).
    static func initializationFlags(_ options: Options) -> UInt32
    /// The scalar state of a parameter at its first update.
    static func initialTensorState(_ options: Options) -> TensorState
    /// The rule's flags and scalars for a tensor's `step`-th update (counted from 1); advances
    /// the tensor's scalar state to what it is after that update.
    static func prepare(_ options: Options, step: Int, state: inout TensorState) -> (flags: UInt32, scalars: Scalars)
    /// The scalar state by torch's names.
    static func values(of state: TensorState) -> [String: Double]
    /// The names `values(of:)` uses.
    static var valueNames: [String] { get }
    /// The scalar state from its values by torch's names.
    static func tensorState(from values: [String: Double]) -> TensorState
    /// The options under torch's names, for state dicts.
    static var optionFields: [OptionField<Options>] { get }
    /// Whether torch keeps a `step` count in a parameter's state (all but SGD do).
    static var keepsStepCount: Bool { get }
}

/// The scalar state of a rule that keeps none.
struct NoTensorState: Equatable {}

extension ElementwiseAlgorithm where TensorState == NoTensorState {
    static func initialTensorState(_ options: Options) -> NoTensorState { NoTensorState() }
    static func values(of state: NoTensorState) -> [String: Double] { [:] }
    static var valueNames: [String] { [] }
    static func tensorState(from values: [String: Double]) -> NoTensorState { NoTensorState() }
}

extension ElementwiseAlgorithm {
    static func initializationFlags(_ options: Options) -> UInt32 { 0 }
    static var keepsStepCount: Bool { true }
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
    private var groupOf: [Int] = []
    var stepCounts: [Int] = []
    var tensorStates: [Algorithm.TensorState?] = []
    /// `slotCount` state tensors per parameter, in parameter order.
    var slots: [Tensor?] = []
    let slotCount = Algorithm.stateNames.count

    var execution: Execution { didSet { launchIsCurrent = false; tablesISA = nil } }
    var implementation: Implementation

    // The launch of the previous step, reused while it stays valid.
    private let buffers = LaunchBuffers()
    private var launchIsCurrent = false
    /// For each parameter, whether it is in the launch (it had a gradient when it was built).
    private var inLaunch: [Bool] = []
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
        self.groups = []
        guard !specs.isEmpty else {
            throw OptimError(.invalidArgument, "optimizer got an empty parameter list")
        }
        try Algorithm.validate(defaults)
        var seen = Set<ObjectIdentifier>()
        for spec in specs {
            try addGroup(spec, defaults: defaults, seen: &seen)
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
        groups.append(ParameterGroup(parameters: spec.parameters, options: options))
        parameters.append(contentsOf: spec.parameters)
        groupOf.append(contentsOf: repeatElement(index, count: count))
        stepCounts.append(contentsOf: repeatElement(0, count: count))
        tensorStates.append(contentsOf: repeatElement(nil, count: count))
        slots.append(contentsOf: repeatElement(nil, count: count * slotCount))
        inLaunch.append(contentsOf: repeatElement(false, count: count))
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

    func state(for parameter: Tensor) -> ParameterState? {
        guard let index = parameters.firstIndex(where: { $0 === parameter }), stepCounts[index] > 0 else { return nil }
        var tensors: [String: Tensor] = [:]
        for slot in 0..<slotCount {
            if let tensor = slots[index * slotCount + slot] { tensors[Algorithm.stateNames[slot]] = tensor }
        }
        let values = tensorStates[index].map(Algorithm.values(of:)) ?? [:]
        return ParameterState(step: stepCounts[index], tensors: tensors, values: values)
    }

    /// Makes the next step rebuild its launch (state or options changed under it).
    func invalidateLaunch() { launchIsCurrent = false }

    func zeroGrad(setToNone: Bool) {
        for parameter in parameters {
            if setToNone { parameter.grad = nil } else { parameter.grad?.zero() }
        }
    }

    func step() throws {
        if !(launchIsCurrent && reuseLaunch()) {
            try buildLaunch()
        }
        guard !active.isEmpty else { return }
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

    /// Advances the previous launch when the same parameters have a gradient as then, each of
    /// its parameter's shape and dtype; a gradient stored elsewhere than the launch's is
    /// re-pointed. Returns false when the launch must be rebuilt (which re-checks and reports).
    ///
    /// Every gradient is checked at every step: neither a tensor's identity nor its address
    /// proves it is the gradient of the previous step, since a tensor released by the caller
    /// can be replaced by a new one at the same address.
    private func reuseLaunch() -> Bool {
        for index in parameters.indices {
            let parameter = parameters[index]
            guard let grad = parameter.grad else {
                if inLaunch[index] { return false } else { continue }
            }
            guard inLaunch[index], grad.dtype == parameter.dtype, grad.shape == parameter.shape else { return false }
            let base = UnsafeRawPointer(grad.storage.base)
            let position = launchPositions[index]
            if buffers.descriptors[position].grad != base { buffers.descriptors[position].grad = base }
        }
        for index in active { stepCounts[index] += 1 }
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
            }
            if keepsTensorState {
                for position in block.positions { tensorStates[active[position]] = block.stateAfter }
            }
            blocks[number] = block
        }
        hadFreshState = false
        return true
    }

    /// Checks every gradient, creates missing state, and fills the launch's descriptors.
    private func buildLaunch() throws {
        // Check everything first: a step that throws must change nothing but the launch
        // buffers, which the next step then rebuilds.
        launchIsCurrent = false
        active.removeAll(keepingCapacity: true)
        for index in parameters.indices {
            let parameter = parameters[index]
            guard let grad = parameter.grad else { continue }
            guard grad.shape == parameter.shape, grad.dtype == parameter.dtype else {
                throw OptimError(.gradientMismatch, """
                    the gradient of parameter \(index) (\(parameter)) is a \(grad.dtype) tensor of shape \
                    \(grad.shape); it must have the parameter's dtype and shape
                    """)
            }
            active.append(index)
        }
        refreshTables()
        hadFreshState = false
        for index in inLaunch.indices {
            inLaunch[index] = false
            launchPositions[index] = -1
        }
        blocks.removeAll(keepingCapacity: true)

        let stride = MemoryLayout<Algorithm.Scalars>.stride
        buffers.reserve(tensors: active.count, scalarStride: stride)
        let offsets = buffers.offsets
        var total = 0
        offsets[0] = 0
        for (position, index) in active.enumerated() {
            let group = groupOf[index]
            let options = groups[group].options
            let parameter = parameters[index]
            let grad = parameter.grad!
            var fresh = false
            for slot in 0..<slotCount where slots[index * slotCount + slot] == nil && Algorithm.usesSlot(slot, options) {
                // Shape and dtype come from a parameter that exists, so this cannot fail.
                slots[index * slotCount + slot] = try! Tensor.zeros(parameter.shape, dtype: parameter.dtype)
                fresh = true
            }
            fresh = fresh || stepCounts[index] == 0
            stepCounts[index] += 1
            let stateBefore = tensorStates[index] ?? Algorithm.initialTensorState(options)
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

            inLaunch[index] = true
            launchPositions[index] = position
            total += parameter.count
            offsets[position + 1] = Int64(total)
        }
        launchTotal = total
        buffers.preparePlan(count: active.count, chunkElements: execution.chunkElements)
        launchIsCurrent = true
    }

    private func refreshTables() {
        guard tablesISA != execution.instructionSet else { return }
        tables = DType.allCases.map { Kernels.table(Algorithm.rule, dtype: $0, isa: execution.instructionSet) }
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
