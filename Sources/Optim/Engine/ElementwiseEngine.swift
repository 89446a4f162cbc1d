/// What the engine needs to know about an element-wise optimizer: its kernel rule, state
/// slots, option validation, and how options and the step count become the rule's flags and
/// per-tensor scalars.
protocol ElementwiseAlgorithm {
    associatedtype Options: OptimizerOptions
    associatedtype Scalars

    static var rule: KernelRule { get }
    /// torch's names of the state slots, in slot order.
    static var stateNames: [String] { get }
    static func validate(_ options: Options) throws
    /// Whether a slot holds state under these options.
    static func usesSlot(_ slot: Int, _ options: Options) -> Bool
    /// The rule flags for these options; `freshState` is true on the step that created the
    /// parameter's state.
    static func flags(_ options: Options, freshState: Bool) -> UInt32
    /// The scalars for a tensor at its `step`-th update (counted from 1).
    static func scalars(_ options: Options, step: Int) -> Scalars
}

/// The state an optimizer keeps for one parameter: the number of updates it received and its
/// state tensors, named as torch names them.
public final class ParameterState: @unchecked Sendable {
    /// Updates applied to this parameter so far.
    public internal(set) var step: Int = 0
    let names: [String]
    var slots: [Tensor?]

    init(names: [String]) {
        self.names = names
        self.slots = Array(repeating: nil, count: names.count)
    }

    /// The state tensor torch calls `name` (for example `exp_avg`), if it exists.
    public subscript(name: String) -> Tensor? {
        names.firstIndex(of: name).flatMap { slots[$0] }
    }

    /// The state tensors that exist, by torch's names.
    public var tensors: [String: Tensor] {
        var result: [String: Tensor] = [:]
        for (name, slot) in zip(names, slots) { if let slot { result[name] = slot } }
        return result
    }
}

/// The shared core of the element-wise optimizers: parameter groups, per-parameter state,
/// gradient checks, the launch buffers, and both code paths.
final class ElementwiseEngine<Algorithm: ElementwiseAlgorithm> {
    private struct Entry {
        let parameter: Tensor
        let group: Int
        var state: ParameterState?
    }

    private(set) var groups: [ParameterGroup<Algorithm.Options>]
    private var entries: [Entry] = []
    private let buffers = LaunchBuffers()
    private var active: [Int] = []
    private var groupFlags: [UInt32] = []
    var execution: Execution { didSet { tablesISA = nil } }
    var implementation: Implementation
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
        for parameter in spec.parameters {
            guard seen.insert(ObjectIdentifier(parameter)).inserted else {
                throw OptimError(.invalidArgument,
                                 "some parameters appear in more than one parameter group (\(parameter))")
            }
        }
        let index = groups.count
        groups.append(ParameterGroup(parameters: spec.parameters, options: options))
        entries.append(contentsOf: spec.parameters.map { Entry(parameter: $0, group: index, state: nil) })
    }

    func addGroup(_ spec: ParameterGroupSpec<Algorithm.Options>, defaults: Algorithm.Options) throws {
        var seen = Set(entries.map { ObjectIdentifier($0.parameter) })
        try addGroup(spec, defaults: defaults, seen: &seen)
    }

    func setOptions(_ options: Algorithm.Options, group: Int) throws {
        guard groups.indices.contains(group) else {
            throw OptimError(.invalidArgument, "no parameter group \(group): there are \(groups.count)")
        }
        try Algorithm.validate(options)
        groups[group].options = options
    }

    func state(for parameter: Tensor) -> ParameterState? {
        entries.first { $0.parameter === parameter }?.state
    }

    func zeroGrad(setToNone: Bool) {
        for entry in entries {
            if setToNone { entry.parameter.grad = nil } else { entry.parameter.grad?.zero() }
        }
    }

    func step() throws {
        // Check everything first: a step that throws must change nothing.
        active.removeAll(keepingCapacity: true)
        for index in entries.indices {
            let parameter = entries[index].parameter
            guard let grad = parameter.grad else { continue }
            guard grad.shape == parameter.shape, grad.dtype == parameter.dtype else {
                throw OptimError(.gradientMismatch, """
                    the gradient of parameter \(index) (\(parameter)) is a \(grad.dtype) tensor of shape \
                    \(grad.shape); it must have the parameter's dtype and shape
                    """)
            }
            active.append(index)
        }
        guard !active.isEmpty else { return }
        refreshTables()

        groupFlags.removeAll(keepingCapacity: true)
        for group in groups { groupFlags.append(Algorithm.flags(group.options, freshState: false)) }

        let scalarStride = MemoryLayout<Algorithm.Scalars>.stride
        buffers.reserve(tensors: active.count, scalarStride: scalarStride)
        let descriptors = buffers.descriptors
        let offsets = buffers.offsets
        let scalarBase = buffers.scalars
        var scalarBlocks = 0
        var lastKey = (group: -1, step: -1)
        var total = 0
        offsets[0] = 0
        for (position, index) in active.enumerated() {
            let group = entries[index].group
            let options = groups[group].options
            let parameter = entries[index].parameter
            let (state, fresh) = ensureState(at: index, options: options)
            state.step += 1

            if lastKey.group != group || lastKey.step != state.step {
                scalarBase.advanced(by: scalarBlocks * scalarStride)
                    .bindMemory(to: Algorithm.Scalars.self, capacity: 1)
                    .initialize(to: Algorithm.scalars(options, step: state.step))
                scalarBlocks += 1
                lastKey = (group, state.step)
            }
            let flags = fresh ? Algorithm.flags(options, freshState: true) : groupFlags[group]

            let descriptor = descriptors.advanced(by: position)
            descriptor.pointee.param = parameter.storage.base
            descriptor.pointee.grad = UnsafeRawPointer(parameter.grad!.storage.base)
            withUnsafeMutableBytes(of: &descriptor.pointee.state) { slots in
                let pointers = slots.bindMemory(to: UnsafeMutableRawPointer?.self)
                for slot in 0..<Kernels.maxStateSlots {
                    pointers[slot] = slot < state.slots.count ? state.slots[slot]?.storage.base : nil
                }
            }
            descriptor.pointee.count = Int64(parameter.count)
            descriptor.pointee.scalars = UnsafeRawPointer(scalarBase.advanced(by: (scalarBlocks - 1) * scalarStride))
            descriptor.pointee.kernel = tables[parameter.dtype.ordinal][Int(flags)]
            total += parameter.count
            offsets[position + 1] = Int64(total)
        }
        buffers.preparePlan(count: active.count, chunkElements: execution.chunkElements)

        switch implementation {
        case .multiTensor:
            buffers.run(range: 0..<total, execution: execution)
        case .forLoop:
            for position in active.indices {
                buffers.run(range: Int(offsets[position])..<Int(offsets[position + 1]), execution: execution)
            }
        }
    }

    /// The parameter's state, created (zeros, in the parameter's dtype) on its first update or
    /// when options turn on a slot it did not have; `fresh` tells the rule that it was created now.
    private func ensureState(at index: Int, options: Algorithm.Options) -> (ParameterState, fresh: Bool) {
        let parameter = entries[index].parameter
        let state: ParameterState
        if let existing = entries[index].state {
            state = existing
        } else {
            state = ParameterState(names: Algorithm.stateNames)
            entries[index].state = state
        }
        var fresh = false
        for slot in 0..<Algorithm.stateNames.count where state.slots[slot] == nil && Algorithm.usesSlot(slot, options) {
            // Shape and dtype come from a parameter that exists, so this cannot fail.
            state.slots[slot] = try! Tensor.zeros(parameter.shape, dtype: parameter.dtype)
            fresh = true
        }
        return (state, fresh)
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
