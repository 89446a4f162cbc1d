#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Measures the memory bandwidth the engine reaches with Adam's traffic: four float32 arrays
/// read (parameter, gradient, two states) and three written per element, with almost no
/// arithmetic, through the same chunks, threads and instruction set as the optimizers.
///
/// A benchmark reports it beside an optimizer's speed: an optimizer that runs as fast as the
/// probe is at the memory wall.
public struct BandwidthProbe {
    /// Bytes Adam moves per float32 element at least: 4 reads and 3 writes of 4 bytes.
    public static let bytesPerElement = 28

    /// One measurement: the elements of a pass and its times.
    public struct Result: Sendable {
        /// Elements of each array.
        public let elements: Int
        /// Median and fastest time of one pass, in milliseconds.
        public let medianMilliseconds: Double
        /// The fastest pass, in milliseconds.
        public let minimumMilliseconds: Double
        /// `bytesPerElement * elements` over the median time.
        public var gigabytesPerSecond: Double {
            Double(BandwidthProbe.bytesPerElement * elements) / (medianMilliseconds * 1e6)
        }
        /// The median pass's time per element, in nanoseconds.
        public var nanosecondsPerElement: Double { medianMilliseconds * 1e6 / Double(elements) }
    }

    /// Runs `repetitions` timed passes (after one untimed pass that touches the pages) over
    /// `elements` elements.
    public static func measure(elements: Int, execution: Execution, repetitions: Int = 10) throws -> Result {
        guard elements > 0, repetitions > 0 else {
            throw OptimError(.invalidArgument, "the probe needs elements > 0 and repetitions > 0")
        }
        let bytes = try Tensor.byteCount([elements], .float32)
        let arrays = try (0..<4).map { _ in try TensorStorage(allocatingBytes: bytes) }
        for (index, array) in arrays.enumerated() {
            array.base.initializeMemory(as: Float.self, repeating: index == 1 ? 1e-3 : 0, count: elements)
        }
        let buffers = LaunchBuffers()
        buffers.reserve(tensors: 1, scalarStride: MemoryLayout<ProbeKernelScalars>.stride)
        buffers.scalars.bindMemory(to: ProbeKernelScalars.self, capacity: 1)
            .initialize(to: ProbeKernelScalars(a: 0.5, b: 0.5))
        let descriptor = buffers.descriptors
        descriptor.pointee.param = arrays[0].base
        descriptor.pointee.grad = UnsafeRawPointer(arrays[1].base)
        descriptor.pointee.state.0 = arrays[2].base
        descriptor.pointee.state.1 = arrays[3].base
        descriptor.pointee.count = Int64(elements)
        descriptor.pointee.scalars = UnsafeRawPointer(buffers.scalars)
        descriptor.pointee.kernel = KernelRule.bandwidthProbe.table(.float32, execution.instructionSet)[0]
        buffers.offsets[0] = 0
        buffers.offsets[1] = Int64(elements)
        buffers.preparePlan(count: 1, chunkElements: execution.chunkElements)

        buffers.run(range: 0..<elements, execution: execution)
        var times: [Double] = []
        for _ in 0..<repetitions {
            let start = monotonicNanoseconds()
            buffers.run(range: 0..<elements, execution: execution)
            times.append(Double(monotonicNanoseconds() - start) / 1e6)
        }
        times.sort()
        withExtendedLifetime(arrays) {}
        return Result(elements: elements, medianMilliseconds: median(sorted: times), minimumMilliseconds: times[0])
    }
}

/// A monotonic clock reading in nanoseconds.
public func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

/// The median of sorted values (the mean of the middle two for an even count).
public func median(sorted values: [Double]) -> Double {
    guard !values.isEmpty else { return .nan }
    let middle = values.count / 2
    return values.count % 2 == 1 ? values[middle] : (values[middle - 1] + values[middle]) / 2
}
