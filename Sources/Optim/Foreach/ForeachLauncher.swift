internal import COptimKernels

/// Runs multi-tensor operations and reductions on the engine: one launch per call, over the
/// concatenation of the lists, cut into chunks that the execution's threads claim. It keeps
/// its buffers between calls, so that a caller that runs many operations (an optimizer) does
/// not allocate per operation. Not thread-safe: one launcher per thread of calls.
final class ForeachLauncher {
    private let buffers = LaunchBuffers()
    private var partials: UnsafeMutablePointer<Double>
    private var partialCapacity = 0

    init() {
        partials = .allocate(capacity: 1)
    }

    deinit { partials.deallocate() }

    /// The element count of the reduction grid's blocks.
    static let reductionBlock = Int(OPTIM_REDUCTION_BLOCK)

    /// `x[i] ← op(x[i], y[i], z[i], a, b)` for every i. The lists must have been validated.
    func elementwise(_ op: ForeachOperation, _ x: [Tensor], _ y: [Tensor]? = nil, _ z: [Tensor]? = nil,
                     a: Double = 0, b: Double = 0, execution: Execution) {
        guard !x.isEmpty else { return }
        let stride = MemoryLayout<optim_foreach_scalars>.stride
        buffers.reserve(tensors: x.count, scalarStride: stride)
        let scalars = buffers.scalars.bindMemory(to: optim_foreach_scalars.self, capacity: 1)
        scalars.pointee = optim_foreach_scalars(a: a, b: b)
        var kernels = KernelCache { optim_foreach_kernel(op.cValue, $0.cValue, execution.instructionSet.cValue) }
        let total = fill(x, y, z, execution: execution) { index, descriptor in
            descriptor.scalars = UnsafeRawPointer(scalars)
            descriptor.kernel = kernels[x[index].dtype]
        }
        buffers.preparePlan(count: x.count, chunkElements: execution.chunkElements)
        buffers.run(range: 0..<total, execution: execution)
    }

    /// The partials of a reduction of `x` (with `y` for a dot product), and where each tensor's
    /// pieces are. Call `combined` or `perTensor` on the result before the next launch.
    func reduce(_ reduction: ForeachReduction, _ x: [Tensor], _ y: [Tensor]? = nil, p: Double = 0,
                execution: Execution) -> ReductionPartials {
        let block = Self.reductionBlock
        let stride = MemoryLayout<optim_reduction_scalars>.stride
        buffers.reserve(tensors: x.count, scalarStride: stride)
        var total = 0
        for tensor in x { total += tensor.count }
        // One partial per (block, tensor) piece, at block index + tensor index.
        let slots = (total + block - 1) / block + x.count
        if slots > partialCapacity {
            partials.deallocate()
            partials = .allocate(capacity: slots)
            partialCapacity = slots
        }
        partials.initialize(repeating: 0, count: slots)
        let scalars = buffers.scalars.bindMemory(to: optim_reduction_scalars.self, capacity: max(x.count, 1))
        var kernels = KernelCache { optim_reduction_kernel(reduction.cValue, $0.cValue, execution.instructionSet.cValue) }
        var offset = 0
        _ = fill(x, y, nil, execution: execution) { index, descriptor in
            (scalars + index).initialize(to: optim_reduction_scalars(
                partials: partials, offset: Int64(offset), index: Int64(index), p: p))
            offset += x[index].count
            descriptor.scalars = UnsafeRawPointer(scalars + index)
            descriptor.kernel = kernels[x[index].dtype]
        }
        // Chunks of whole blocks, so that no piece is split between workers; the partials do
        // not depend on the chunk size either, since they follow the block grid.
        let wholeBlocks = execution.chunkElements / block + (execution.chunkElements % block == 0 ? 0 : 1)
        let chunk = wholeBlocks.multipliedReportingOverflow(by: block).overflow ? Int.max / block * block
            : wholeBlocks * block
        buffers.preparePlan(count: x.count, chunkElements: chunk)
        if total > 0 {
            buffers.run(range: 0..<total, execution: execution.with(chunkElements: chunk))
        }
        return ReductionPartials(owner: self, partials: UnsafePointer(partials), counts: x.map(\.count),
                                 isMaximum: reduction == .maxAbs)
    }

    /// Fills the descriptors and offsets; returns the element total.
    private func fill(_ x: [Tensor], _ y: [Tensor]?, _ z: [Tensor]?, execution: Execution,
                      _ complete: (Int, inout KernelTensor) -> Void) -> Int {
        let offsets = buffers.offsets
        var total = 0
        offsets[0] = 0
        for index in x.indices {
            var descriptor = KernelTensor()
            descriptor.param = x[index].storage.base
            if let y { descriptor.grad = UnsafeRawPointer(y[index].storage.base) }
            if let z { descriptor.state.0 = z[index].storage.base }
            descriptor.count = Int64(x[index].count)
            complete(index, &descriptor)
            buffers.descriptors[index] = descriptor
            total += x[index].count
            offsets[index + 1] = Int64(total)
        }
        return total
    }
}

/// The per-piece partials of a reduction, combined in a fixed order: pieces in position order
/// for the whole list, each tensor's pieces in order for per-tensor results.
struct ReductionPartials {
    /// Keeps the partials' memory alive.
    let owner: ForeachLauncher
    let partials: UnsafePointer<Double>
    let counts: [Int]
    let isMaximum: Bool

    /// The reduction of the whole list.
    var combined: Double {
        var total = 0
        for count in counts { total += count }
        let slots = (total + ForeachLauncher.reductionBlock - 1) / ForeachLauncher.reductionBlock + counts.count
        return optim_reduction_combine(partials, 0, Int64(slots), isMaximum ? 1 : 0)
    }

    /// The reduction of each tensor (0 for an empty one).
    var perTensor: [Double] {
        let block = ForeachLauncher.reductionBlock
        var results: [Double] = []
        results.reserveCapacity(counts.count)
        var offset = 0
        for (index, count) in counts.enumerated() {
            if count == 0 {
                results.append(0)
                continue
            }
            let first = offset / block, last = (offset + count - 1) / block
            results.append(optim_reduction_combine(partials, Int64(first + index), Int64(last - first + 1),
                                                   isMaximum ? 1 : 0))
            offset += count
        }
        return results
    }
}

/// The kernel of an operation for each dtype, looked up once per call.
private struct KernelCache {
    private var cache: [SegmentFunction?] = [nil, nil, nil, nil]
    private let lookup: (DType) -> SegmentFunction?

    init(_ lookup: @escaping (DType) -> SegmentFunction?) { self.lookup = lookup }

    subscript(dtype: DType) -> SegmentFunction? {
        mutating get {
            if let kernel = cache[dtype.ordinal] { return kernel }
            let kernel = lookup(dtype)
            cache[dtype.ordinal] = kernel
            return kernel
        }
    }
}

/// The element-wise operations of the kernel target (formulas in include/ForeachOps.h).
enum ForeachOperation {
    case addScalar
    case scale
    case add
    case axpby
    case addcmul
    case addcdiv
    case lerpNear
    case lerpFar
    case sqrt
    case maximum
    case clamp
    case copy
    case zero

    var cValue: optim_foreach_op {
        switch self {
        case .addScalar: OPTIM_FOREACH_ADD_SCALAR
        case .scale: OPTIM_FOREACH_SCALE
        case .add: OPTIM_FOREACH_ADD
        case .axpby: OPTIM_FOREACH_AXPBY
        case .addcmul: OPTIM_FOREACH_ADDCMUL
        case .addcdiv: OPTIM_FOREACH_ADDCDIV
        case .lerpNear: OPTIM_FOREACH_LERP_NEAR
        case .lerpFar: OPTIM_FOREACH_LERP_FAR
        case .sqrt: OPTIM_FOREACH_SQRT
        case .maximum: OPTIM_FOREACH_MAXIMUM
        case .clamp: OPTIM_FOREACH_CLAMP
        case .copy: OPTIM_FOREACH_COPY
        case .zero: OPTIM_FOREACH_ZERO
        }
    }
}

/// The reductions of the kernel target, accumulated in double.
enum ForeachReduction {
    case dot
    case sumAbs
    case sumSquares
    case sumPowAbs
    case maxAbs

    var cValue: optim_reduction {
        switch self {
        case .dot: OPTIM_REDUCTION_DOT
        case .sumAbs: OPTIM_REDUCTION_SUM_ABS
        case .sumSquares: OPTIM_REDUCTION_SUM_SQUARES
        case .sumPowAbs: OPTIM_REDUCTION_SUM_POW_ABS
        case .maxAbs: OPTIM_REDUCTION_MAX_ABS
        }
    }
}
