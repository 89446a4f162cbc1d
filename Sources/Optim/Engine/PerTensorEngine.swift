import Dispatch

/// What the per-tensor engine needs to know about an optimizer whose update of a tensor reads
/// the whole tensor (norms, row and column means, matrix products), such as ``Adafactor`` and
/// ``Muon``: its state tensors and their shapes, option checks, scratch memory and the job that
/// its kernel runs for one tensor.
protocol PerTensorAlgorithm {
    associatedtype Options: TorchNamedOptions
    /// The kernel's description of one tensor's update (a C struct).
    associatedtype Job

    /// torch's names of the state tensors, in slot order.
    static var stateNames: [String] { get }
    /// Whether torch keeps a `step` count in a parameter's state.
    static var keepsStepCount: Bool { get }
    static func validate(_ options: Options) throws
    /// Throws when the optimizer cannot update a parameter of this shape.
    static func check(parameter: Tensor, index: Int) throws
    /// The shape of a state slot for a parameter of `shape`; nil where it has no such state.
    static func stateShape(slot: Int, parameterShape shape: [Int]) -> [Int]?
    /// Scratch bytes the kernel needs for a parameter of `shape`.
    static func scratchBytes(parameterShape shape: [Int]) -> Int
    /// The cost of one update, in elements of an Adam-like update, to compare with
    /// ``Execution/serialThreshold``.
    static func work(parameterShape shape: [Int], options: Options) -> Int
    static func kernel(dtype: DType, isa: InstructionSet) -> SegmentFunction?
    /// The job of `parameter`'s `step`-th update (counted from 1).
    static func job(_ options: Options, step: Int, parameter: Tensor, scratch: UnsafePointer<ScratchPool>) -> Job
}

/// The engine of the per-tensor optimizers: parameter groups, state, gradient checks and the
/// launch of one job per tensor.
///
/// A job is a whole tensor's update, computed by one worker in a fixed order, so results are
/// the same bits for any thread count, backend and tier. Workers claim jobs through the chunk
/// scheduler (a chunk of one job), and borrow scratch memory from a pool with one block per
/// worker. Launch buffers and scratch are kept across steps: a step in steady state allocates
/// nothing.
final class PerTensorEngine<Algorithm: PerTensorAlgorithm> {
    typealias Options = Algorithm.Options

    var groups: [ParameterGroup<Options>] = []
    private(set) var parameters: [Tensor] = []
    private var groupOf: [Int] = []
    private(set) var stepCounts: [Int] = []
    /// `slotCount` state tensors per parameter, in parameter order.
    private(set) var slots: [Tensor?] = []
    let slotCount = Algorithm.stateNames.count

    var execution: Execution
    var implementation: Implementation

    private var capacity = 0
    private var descriptors: UnsafeMutablePointer<KernelTensor>
    private var offsets: UnsafeMutablePointer<Int64>
    private var jobs: UnsafeMutablePointer<Algorithm.Job>
    private let plan: UnsafeMutablePointer<KernelPlan>
    private let pool: UnsafeMutablePointer<ScratchPool>
    private var scratchSlotCapacity = 0
    /// The parameters with a gradient at this step, in order.
    private var active: [Int] = []
    private var kernels: [SegmentFunction?] = []
    private var kernelsISA: InstructionSet?

    init(groups specs: [ParameterGroupSpec<Options>], defaults: Options, execution: Execution?,
         implementation: Implementation) throws {
        self.execution = try execution ?? Execution.fromEnvironment()
        self.implementation = implementation
        descriptors = .allocate(capacity: 1)
        offsets = .allocate(capacity: 2)
        jobs = .allocate(capacity: 1)
        plan = .allocate(capacity: 1)
        plan.initialize(to: KernelPlan())
        pool = .allocate(capacity: 1)
        pool.initialize(to: ScratchPool())
        guard !specs.isEmpty else {
            throw OptimError(.invalidArgument, "optimizer got an empty parameter list")
        }
        try Algorithm.validate(defaults)
        var seen = Set<ObjectIdentifier>()
        for spec in specs { try addGroup(spec, defaults: defaults, seen: &seen) }
    }

    deinit {
        descriptors.deallocate()
        offsets.deallocate()
        jobs.deallocate()
        plan.deallocate()
        if let memory = pool.pointee.memory { memory.deallocate() }
        if let busy = pool.pointee.busy { busy.deallocate() }
        pool.deallocate()
    }

    private func addGroup(_ spec: ParameterGroupSpec<Options>, defaults: Options, seen: inout Set<ObjectIdentifier>) throws {
        var options = defaults
        spec.configure(&options)
        try Algorithm.validate(options)
        var inGroup = Set<ObjectIdentifier>()
        for (offset, parameter) in spec.parameters.enumerated() {
            guard !seen.contains(ObjectIdentifier(parameter)), inGroup.insert(ObjectIdentifier(parameter)).inserted else {
                throw OptimError(.invalidArgument,
                                 "some parameters appear more than once in the parameter groups (\(parameter))")
            }
            try Algorithm.check(parameter: parameter, index: parameters.count + offset)
        }
        seen.formUnion(inGroup)
        let count = spec.parameters.count
        groupOf.append(contentsOf: repeatElement(groups.count, count: count))
        groups.append(ParameterGroup(parameters: spec.parameters, options: options, names: spec.names))
        parameters.append(contentsOf: spec.parameters)
        stepCounts.append(contentsOf: repeatElement(0, count: count))
        slots.append(contentsOf: repeatElement(nil, count: count * slotCount))
    }

    func addGroup(_ spec: ParameterGroupSpec<Options>, defaults: Options) throws {
        var seen = Set(parameters.map(ObjectIdentifier.init))
        try addGroup(spec, defaults: defaults, seen: &seen)
    }

    func setOptions(_ options: Options, group: Int) throws {
        guard groups.indices.contains(group) else {
            throw OptimError(.invalidArgument, "no parameter group \(group): there are \(groups.count)")
        }
        try Algorithm.validate(options)
        groups[group].options = options
    }

    func state(for parameter: Tensor) -> ParameterState? {
        guard let index = parameters.firstIndex(where: { $0 === parameter }), stepCounts[index] > 0 else { return nil }
        var tensors: [String: Tensor] = [:]
        for slot in 0..<slotCount {
            if let tensor = slots[index * slotCount + slot] { tensors[Algorithm.stateNames[slot]] = tensor }
        }
        return ParameterState(step: stepCounts[index], tensors: tensors)
    }

    /// Replaces every step count and state tensor (a loaded state dict).
    func restore(steps: [Int], slots: [Tensor?]) {
        stepCounts = steps
        self.slots = slots
    }

    func zeroGrad(setToNone: Bool) {
        for parameter in parameters { parameter.zeroGradient(setToNone: setToNone) }
    }

    func step() throws {
        // Every check comes first: a step that throws changes nothing.
        active.removeAll(keepingCapacity: true)
        for index in parameters.indices {
            let parameter = parameters[index]
            guard parameter.sparseGrad == nil else {
                throw OptimError(.gradientMismatch, """
                    this optimizer does not support sparse gradients (parameter \(index), \(parameter)): use Adagrad \
                    or SparseAdam, or a dense gradient
                    """)
            }
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
        // Missing state is made before anything changes: running out of memory changes nothing.
        var freshState: [Int: Tensor] = [:]
        for index in active {
            for slot in 0..<slotCount where slots[index * slotCount + slot] == nil {
                if let shape = Algorithm.stateShape(slot: slot, parameterShape: parameters[index].shape) {
                    freshState[index * slotCount + slot] = try Tensor.zeros(shape, dtype: parameters[index].dtype)
                }
            }
        }
        for (position, tensor) in freshState { slots[position] = tensor }
        if kernelsISA != execution.instructionSet {
            kernels = DType.allCases.map { Algorithm.kernel(dtype: $0, isa: execution.instructionSet) }
            kernelsISA = execution.instructionSet
        }
        reserve(jobs: active.count)

        var scratchBytes = 0
        var work = 0
        offsets[0] = 0
        for (position, index) in active.enumerated() {
            let parameter = parameters[index]
            let options = groups[groupOf[index]].options
            stepCounts[index] += 1
            scratchBytes = max(scratchBytes, Algorithm.scratchBytes(parameterShape: parameter.shape))
            work += Algorithm.work(parameterShape: parameter.shape, options: options)
            (jobs + position).initialize(to: Algorithm.job(options, step: stepCounts[index], parameter: parameter,
                                                           scratch: UnsafePointer(pool)))
            var descriptor = KernelTensor()
            descriptor.param = parameter.storage.base
            descriptor.grad = UnsafeRawPointer(parameter.grad!.storage.base)
            withUnsafeMutableBytes(of: &descriptor.state) { raw in
                let pointers = raw.bindMemory(to: UnsafeMutableRawPointer?.self)
                for slot in 0..<slotCount { pointers[slot] = slots[index * slotCount + slot]?.storage.base }
            }
            descriptor.count = 1
            descriptor.scalars = UnsafeRawPointer(jobs + position)
            descriptor.kernel = kernels[parameter.dtype.ordinal]
            descriptors[position] = descriptor
            offsets[position + 1] = Int64(position + 1)
        }

        let parallel = implementation == .multiTensor && execution.backend != .serial
            && work >= execution.serialThreshold
        let workers = parallel ? min(execution.threads, active.count) : 1
        reserveScratch(slots: workers, bytes: scratchBytes)
        plan.pointee.tensors = UnsafePointer(descriptors)
        plan.pointee.offsets = UnsafePointer(offsets)
        plan.pointee.tensor_count = Int32(active.count)
        plan.pointee.chunk_elements = 1
        switch implementation {
        case .multiTensor:
            run(jobs: 0..<active.count, workers: workers)
        case .forLoop:
            for position in active.indices { run(jobs: position..<(position + 1), workers: 1) }
        }
    }

    private func run(jobs range: Range<Int>, workers: Int) {
        Kernels.reset(plan, range: range)
        defer {
            // One job a tensor: jobs are the chunks, and no boundary falls inside a tensor.
            if let tally = execution.launchTally, !range.isEmpty {
                var counts = LaunchTally.Counts()
                counts.launches = 1
                counts.chunks = range.count
                counts.threadedLaunches = workers > 1 && execution.backend != .serial ? 1 : 0
                counts.sharedLaunches = plan.pointee.claiming_workers > 1 ? 1 : 0
                tally.add(counts)
            }
        }
        guard workers > 1 else {
            Kernels.work(plan)
            return
        }
        execution.run(plan, threads: workers)
    }

    /// Room for `count` jobs; allocates only when the launch outgrows what it had.
    private func reserve(jobs count: Int) {
        guard count > capacity else { return }
        descriptors.deallocate()
        offsets.deallocate()
        jobs.deallocate()
        descriptors = .allocate(capacity: count)
        descriptors.initialize(repeating: KernelTensor(), count: count)
        offsets = .allocate(capacity: count + 1)
        jobs = .allocate(capacity: count)
        capacity = count
    }

    /// A scratch block of at least `bytes` for each of `slots` workers; allocates only when the
    /// pool outgrows what it had.
    private func reserveScratch(slots: Int, bytes: Int) {
        let slotBytes = (bytes + 63) / 64 * 64
        if slotBytes > pool.pointee.slot_bytes || slots > scratchSlotCapacity {
            let newBytes = max(slotBytes, Int(pool.pointee.slot_bytes))
            let newSlots = max(slots, scratchSlotCapacity)
            pool.pointee.memory?.deallocate()
            pool.pointee.busy?.deallocate()
            pool.pointee.memory = newBytes == 0 ? nil
                : UnsafeMutableRawPointer.allocate(byteCount: newBytes * newSlots, alignment: 64)
            let busy = UnsafeMutablePointer<Int32>.allocate(capacity: newSlots)
            busy.initialize(repeating: 0, count: newSlots)
            pool.pointee.busy = busy
            pool.pointee.slot_bytes = Int64(newBytes)
            scratchSlotCapacity = newSlots
        }
        pool.pointee.slots = Int32(scratchSlotCapacity)
    }
}

