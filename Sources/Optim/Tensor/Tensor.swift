#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A dense, contiguous, row-major array of numbers in CPU memory, with an optional gradient.
///
/// Storage that the tensor allocates is 64-byte aligned (a cache line, and an AVX-512 vector).
/// A tensor can also wrap memory that the caller owns, without copying, so that buffers of
/// another framework can be optimized in place.
///
/// A tensor is a reference type, like a torch tensor: optimizers update parameters in place,
/// and `grad` is read at each `step()`. It is not synchronized; do not mutate a tensor from
/// one thread while an optimizer steps it on another.
public final class Tensor: @unchecked Sendable {
    /// The extent of each dimension; empty for a scalar.
    public let shape: [Int]
    /// The element type.
    public let dtype: DType
    /// Where the storage lives.
    public let device: Device
    /// The number of elements: the product of `shape`.
    public let count: Int
    /// The gradient an optimizer step reads; `nil` when the parameter has none. It must have
    /// this tensor's shape and dtype.
    public var grad: Tensor? { didSet { gradAssignments &+= 1 } }
    /// How many times `grad` or `sparseGrad` was assigned. An optimizer that recorded the count
    /// when it last checked the gradients knows, from this one field, that they are still those
    /// tensors (whose shape, dtype and storage never change): it need not reach the gradient
    /// object, a cache miss per tensor per step, and it keeps no reference that would hold the
    /// gradient alive. Unchecked for exclusivity: a tensor is not synchronized anyway (see
    /// above), and the check cost a runtime call per tensor per step.
    @exclusivity(unchecked) private(set) var gradAssignments: UInt64 = 0
    /// A row-sparse gradient (an embedding's, say), for the optimizers that accept one
    /// (Adagrad, SparseAdam). A parameter has a dense `grad` or a `sparseGrad`, not both.
    public var sparseGrad: RowSparseGradient? { didSet { gradAssignments &+= 1 } }

    let storage: TensorStorage

    /// The first byte of the elements.
    public var baseAddress: UnsafeMutableRawPointer { storage.base }
    /// The size of the elements in bytes.
    public var byteCount: Int { count * dtype.byteWidth }

    init(shape: [Int], dtype: DType, storage: TensorStorage) {
        self.shape = shape
        self.dtype = dtype
        self.device = .cpu
        self.count = shape.reduce(1, *)
        self.storage = storage
    }

    /// A tensor of zeros. Throws when the shape is invalid or the memory cannot be allocated.
    public static func zeros(_ shape: [Int], dtype: DType = .float32) throws -> Tensor {
        let bytes = try Tensor.byteCount(shape, dtype)
        let storage = try TensorStorage(allocatingBytes: bytes)
        storage.base.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        return Tensor(shape: shape, dtype: dtype, storage: storage)
    }

    /// Tensors of zeros with these shapes, one after another in one buffer with nothing between
    /// them (the first on a 64-byte boundary); the buffer lives as long as any of them.
    ///
    /// Cut a model's many small parameters from one buffer, and their gradients from another,
    /// and an optimizer steps each stretch of them as one tensor: its state follows the same
    /// layout, and the engine joins tensors that continue one another in every array into one
    /// run, with nothing spent per small tensor in the kernels. The results are the same, bit
    /// for bit, as for the same tensors allocated one by one. Throws when a shape is invalid,
    /// the total size overflows, or the memory cannot be allocated.
    public static func packedZeros(_ shapes: [[Int]], dtype: DType = .float32) throws -> [Tensor] {
        try zerosSharingOneAllocation(shapes.map { ($0, dtype, true) })
    }

    /// Tensors of zeros with these shapes and dtypes in one allocation, one after another; each
    /// starts on a 64-byte boundary unless it `followsPrevious`, when it starts where the one
    /// before it ends (the elements of both must then have one width). The allocation lives as
    /// long as any of them. Throws when a shape is invalid, the total size overflows, or the
    /// memory cannot be allocated.
    static func zerosSharingOneAllocation(_ specs: [(shape: [Int], dtype: DType, followsPrevious: Bool)]) throws -> [Tensor] {
        var offsets: [Int] = []
        offsets.reserveCapacity(specs.count)
        var total = 0
        for spec in specs {
            let bytes = try Tensor.byteCount(spec.shape, spec.dtype)
            var start = total
            if !spec.followsPrevious || offsets.isEmpty {
                // A tensor on a boundary of its own gets a line even when empty, so that it has an
                // address of its own.
                let (padded, overflow) = total.addingReportingOverflow(TensorStorage.alignment - 1)
                guard !overflow else { throw OptimError(.invalidArgument, "the tensors together exceed the address space") }
                start = padded / TensorStorage.alignment * TensorStorage.alignment
            }
            let (end, overflow) = start.addingReportingOverflow(spec.followsPrevious ? bytes : max(bytes, 1))
            guard !overflow else { throw OptimError(.invalidArgument, "the tensors together exceed the address space") }
            offsets.append(start)
            total = end
        }
        guard !specs.isEmpty else { return [] }
        let allocation = try TensorStorage(allocatingBytes: total)
        allocation.base.initializeMemory(as: UInt8.self, repeating: 0, count: max(total, 1))
        return zip(specs, offsets).map { spec, offset in
            Tensor(shape: spec.shape, dtype: spec.dtype,
                   storage: TensorStorage(borrowing: allocation.base + offset, onRelease: { withExtendedLifetime(allocation) {} }))
        }
    }

    /// A tensor holding `values` (row-major) converted to `dtype` by rounding to nearest, ties
    /// to even. `shape` defaults to one dimension of `values.count`.
    public convenience init<Scalar: BinaryFloatingPoint>(_ values: [Scalar], shape: [Int]? = nil,
                                                         dtype: DType = .float32) throws {
        let shape = shape ?? [values.count]
        let count = try Tensor.elementCount(shape)
        guard count == values.count else {
            throw OptimError(.invalidArgument,
                             "shape \(shape) holds \(count) elements but \(values.count) values were given")
        }
        let storage = try TensorStorage(allocatingBytes: Tensor.byteCount(shape, dtype))
        let doubles = values as? [Double] ?? values.map { Double($0) }
        doubles.withUnsafeBufferPointer { Kernels.convert(from: $0, to: storage.base, dtype: dtype) }
        self.init(shape: shape, dtype: dtype, storage: storage)
    }

    /// Wraps `count(shape)` elements of `dtype` at `pointer` without copying. The memory must
    /// stay valid, and be used by nobody else while an optimizer steps, until the tensor is
    /// released; `onRelease` runs then (to give the buffer back to its owner).
    public convenience init(wrapping pointer: UnsafeMutableRawPointer, shape: [Int], dtype: DType,
                            onRelease: (@Sendable () -> Void)? = nil) throws {
        _ = try Tensor.byteCount(shape, dtype)
        guard Int(bitPattern: pointer) % dtype.byteWidth == 0 else {
            throw OptimError(.invalidArgument,
                             "memory at \(pointer) is not aligned to the \(dtype.byteWidth)-byte elements of \(dtype)")
        }
        self.init(shape: shape, dtype: dtype, storage: TensorStorage(borrowing: pointer, onRelease: onRelease))
    }

    /// The elements, row-major, converted exactly to `Double`.
    public func toArray() -> [Double] {
        [Double](unsafeUninitializedCapacity: count) { buffer, initialized in
            Kernels.convert(from: storage.base, dtype: dtype, to: buffer)
            initialized = count
        }
    }

    /// The elements, row-major, as `Float` (exact for every dtype but `float64`).
    public func toFloatArray() -> [Float] { toArray().map(Float.init) }

    /// A new tensor with a copy of these elements (no gradient). Throws when the memory cannot
    /// be allocated.
    public func clone() throws -> Tensor {
        let copy = try TensorStorage(allocatingBytes: byteCount)
        copy.base.copyMemory(from: storage.base, byteCount: byteCount)
        return Tensor(shape: shape, dtype: dtype, storage: copy)
    }

    /// Overwrites the elements with those of `other`, which must have the same shape and dtype.
    public func copy(from other: Tensor) throws {
        guard other.shape == shape, other.dtype == dtype else {
            throw OptimError(.invalidArgument,
                             "cannot copy a \(other.dtype) tensor of shape \(other.shape) into a \(dtype) tensor of shape \(shape)")
        }
        storage.base.copyMemory(from: other.storage.base, byteCount: byteCount)
    }

    /// Overwrites the elements with those of `other`, which must have as many, converted to this
    /// tensor's dtype (rounded to nearest, ties to even) when it is another one. The conversion
    /// goes through `Double` a block at a time, never a whole copy.
    func copy(convertingFrom other: Tensor) throws {
        guard other.count == count else {
            throw OptimError(.invalidArgument, "cannot copy \(other.count) elements into a tensor of \(count)")
        }
        if other.dtype == dtype { return storage.base.copyMemory(from: other.storage.base, byteCount: byteCount) }
        let block = 1 << 14
        withUnsafeTemporaryAllocation(of: Double.self, capacity: block) { buffer in
            for start in stride(from: 0, to: count, by: block) {
                let part = UnsafeMutableBufferPointer(rebasing: buffer[0..<min(block, count - start)])
                Kernels.convert(from: other.storage.base + start * other.dtype.byteWidth, dtype: other.dtype, to: part)
                Kernels.convert(from: UnsafeBufferPointer(part), to: storage.base + start * dtype.byteWidth, dtype: dtype)
            }
        }
    }

    /// `values` in a flat tensor of `dtype`, for values already in memory (a literal, say): the
    /// process stops, as the standard library's arrays do, if the memory cannot be allocated.
    convenience init(uncheckedCopying values: [Double], dtype: DType) {
        do {
            try self.init(values, shape: [values.count], dtype: dtype)
        } catch {
            fatalError("cannot allocate \(values.count) elements of \(dtype): \(error)")
        }
    }

    /// Sets every element to zero.
    public func zero() {
        storage.base.initializeMemory(as: UInt8.self, repeating: 0, count: byteCount)
    }

    /// A hash of the element bytes: equal tensors (bit for bit) give equal hashes.
    public func bitHash(seed: UInt64 = 0) -> UInt64 {
        Kernels.hash(storage.base, byteCount: byteCount, seed: seed)
    }

    static func elementCount(_ shape: [Int]) throws -> Int {
        var count = 1
        for extent in shape {
            guard extent >= 0 else {
                throw OptimError(.invalidArgument, "shape \(shape) has a negative extent")
            }
            let (product, overflow) = count.multipliedReportingOverflow(by: extent)
            guard !overflow else { throw OptimError(.invalidArgument, "shape \(shape) has too many elements") }
            count = product
        }
        return count
    }

    /// The bytes of a tensor of `shape` and `dtype`; throws when the shape is invalid or the
    /// size does not fit in an `Int`, so that every tensor's `byteCount` is representable.
    static func byteCount(_ shape: [Int], _ dtype: DType) throws -> Int {
        let (bytes, overflow) = try elementCount(shape).multipliedReportingOverflow(by: dtype.byteWidth)
        guard !overflow else { throw OptimError(.invalidArgument, "shape \(shape) of \(dtype) has too many bytes") }
        return bytes
    }
}

extension Tensor: CustomStringConvertible {
    /// The dtype and shape, as in `Tensor(float32, shape: [2, 2])`; not the values.
    public var description: String { "Tensor(\(dtype), shape: \(shape))" }
}

/// The memory of a tensor: allocated (64-byte aligned, freed with the storage) or borrowed.
final class TensorStorage: @unchecked Sendable {
    static let alignment = 64

    let base: UnsafeMutableRawPointer
    private let owned: Bool
    private let onRelease: (@Sendable () -> Void)?

    /// Allocations from this size on are aligned to 2 MiB and offered to the kernel for
    /// transparent huge pages: optimizer steps stream through several large arrays at once, and
    /// 4 KiB pages then cost a TLB miss every 1,024 floats of each stream. The size is not
    /// rounded up: the kernel backs the whole 2 MiB blocks with huge pages and the tail with
    /// small ones, so no memory is spent past the tensor's end (gpt2small with RMSprop: 1.48 GB
    /// resident instead of 1.60 GB, the same step time).
    static let hugePageThreshold = 2 << 20
    static let hugePageSize = 2 << 20

    /// Allocates `byteCount` bytes; throws when the system cannot provide them (the standard
    /// library's allocator would stop the process instead).
    init(allocatingBytes byteCount: Int) throws {
        // Never a zero-size allocation, so that every tensor has a valid, unique address.
        let huge = byteCount >= TensorStorage.hugePageThreshold
        var memory: UnsafeMutableRawPointer?
        let status = posix_memalign(&memory, huge ? TensorStorage.hugePageSize : TensorStorage.alignment,
                                    max(byteCount, TensorStorage.alignment))
        guard status == 0, let memory else {
            throw OptimError(.outOfMemory, "cannot allocate \(byteCount) bytes for a tensor")
        }
        #if os(Linux)
        if huge { _ = madvise(memory, byteCount, MADV_HUGEPAGE) }
        #endif
        base = memory
        owned = true
        onRelease = nil
    }

    init(borrowing pointer: UnsafeMutableRawPointer, onRelease: (@Sendable () -> Void)?) {
        base = pointer
        owned = false
        self.onRelease = onRelease
    }

    deinit {
        if owned { free(base) } else { onRelease?() }
    }
}
