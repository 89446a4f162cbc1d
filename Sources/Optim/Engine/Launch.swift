import Dispatch

/// The buffers of one multi-tensor launch (tensor descriptors, element offsets, per-tensor
/// scalars and the plan), kept across steps so that a step in steady state allocates nothing.
final class LaunchBuffers {
    private(set) var capacity = 0
    private(set) var scalarStride = 0
    private(set) var descriptors: UnsafeMutablePointer<KernelTensor>
    private(set) var offsets: UnsafeMutablePointer<Int64>
    private(set) var scalars: UnsafeMutableRawPointer
    let plan: UnsafeMutablePointer<KernelPlan>

    init() {
        descriptors = .allocate(capacity: 1)
        offsets = .allocate(capacity: 1)
        scalars = .allocate(byteCount: 64, alignment: 64)
        plan = .allocate(capacity: 1)
        plan.initialize(to: KernelPlan())
    }

    deinit {
        descriptors.deallocate()
        offsets.deallocate()
        scalars.deallocate()
        plan.deallocate()
    }

    /// Makes room for `tensors` descriptors and scalar blocks of `stride` bytes; allocates only
    /// when the launch outgrows what it had.
    func reserve(tensors: Int, scalarStride stride: Int) {
        if tensors > capacity || stride > scalarStride {
            let newCapacity = max(tensors, capacity)
            let newStride = max(stride, scalarStride)
            descriptors.deallocate()
            offsets.deallocate()
            scalars.deallocate()
            descriptors = .allocate(capacity: max(newCapacity, 1))
            descriptors.initialize(repeating: KernelTensor(), count: max(newCapacity, 1))
            offsets = .allocate(capacity: newCapacity + 1)
            scalars = .allocate(byteCount: max(newCapacity * newStride, 64), alignment: 64)
            capacity = newCapacity
            scalarStride = newStride
        }
    }

    /// Points the plan at the first `count` descriptors.
    func preparePlan(count: Int, chunkElements: Int) {
        plan.pointee.tensors = UnsafePointer(descriptors)
        plan.pointee.offsets = UnsafePointer(offsets)
        plan.pointee.tensor_count = Int32(count)
        plan.pointee.chunk_elements = Int64(chunkElements)
    }

    /// Runs the elements `range` of the launch with `execution`.
    func run(range: Range<Int>, execution: Execution) {
        Kernels.reset(plan, range: range)
        let chunkSize = execution.chunkElements
        let chunks = range.count / chunkSize + (range.count % chunkSize == 0 ? 0 : 1)
        let threads = min(execution.threads, chunks)
        defer {
            if let tally = execution.launchTally {
                let threaded = threads > 1 && execution.backend != .serial && range.count >= execution.serialThreshold
                tally.add(counts(range: range, chunkSize: chunkSize, chunks: chunks, threaded: threaded))
            }
        }
        if threads <= 1 || execution.backend == .serial || range.count < execution.serialThreshold {
            Kernels.work(plan)
            return
        }
        execution.run(plan, threads: threads)
    }

    /// What the launch just run over `range` did, for a ``LaunchTally``: its chunks, whether
    /// threads shared them, where chunk boundaries cut tensors and which pieces end in a
    /// partial vector. Computed only when an execution carries a tally.
    private func counts(range: Range<Int>, chunkSize: Int, chunks: Int, threaded: Bool) -> LaunchTally.Counts {
        var counts = LaunchTally.Counts()
        guard !range.isEmpty else { return counts }
        counts.launches = 1
        counts.chunks = chunks
        counts.threadedLaunches = threaded ? 1 : 0
        counts.sharedLaunches = plan.pointee.claiming_workers > 1 ? 1 : 0
        // Each tensor's part of the range, cut where chunks end (chunks start at the range's
        // lower bound); written so that no sum overflows whatever the chunk size.
        for tensor in 0..<Int(plan.pointee.tensor_count) {
            var begin = max(range.lowerBound, Int(offsets[tensor]))
            let stop = min(range.upperBound, Int(offsets[tensor + 1]))
            while begin < stop {
                let leftInChunk = chunkSize - (begin - range.lowerBound) % chunkSize
                let end = begin + min(stop - begin, leftInChunk)
                if (end - begin) % 8 != 0 { counts.piecesEndingInPartialVectors += 1 }
                if end < stop { counts.boundariesInsideTensors += 1 }
                begin = end
            }
        }
        return counts
    }
}

extension Execution {
    /// Runs `plan`, reset to its range, on `threads` threads of this backend (the calling
    /// thread among them).
    func run(_ plan: UnsafeMutablePointer<KernelPlan>, threads: Int) {
        let shared = SharedPlan(pointer: plan)
        switch backend {
        case .serial:
            Kernels.work(plan)
        case .dispatch:
            if let team = DispatchTeam.shared {
                team.run(plan, threads: threads)
            } else {
                DispatchQueue.concurrentPerform(iterations: threads) { _ in Kernels.work(shared.pointer) }
            }
        case .openMP:
            // Execution's initializer refuses .openMP when no runtime loads.
            guard case .success(let runtime) = OpenMPRuntime.shared else { fatalError("unreachable") }
            runtime.run(plan, threads: threads)
        }
    }
}

/// The plan, handed to worker threads. Workers only claim chunks through its atomic counter
/// and write disjoint elements.
private struct SharedPlan: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<KernelPlan>
}
