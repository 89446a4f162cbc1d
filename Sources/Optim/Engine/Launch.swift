import Dispatch

/// The buffers of one multi-tensor launch (tensor descriptors, element offsets, per-tensor
/// scalars and the plan), kept across steps so that a step in steady state allocates nothing.
final class LaunchBuffers {
    private(set) var capacity = 0
    private(set) var scalarStride = 0
    private(set) var descriptors: UnsafeMutablePointer<KernelTensor>
    private(set) var offsets: UnsafeMutablePointer<Int64>
    private(set) var scalars: UnsafeMutableRawPointer
    /// The bytes of an element of each descriptor's tensors, for ``coalesceRuns(count:stateSlots:chunkElements:)``.
    private(set) var elementBytes: UnsafeMutablePointer<Int>
    /// The descriptors the plan runs after ``coalesceRuns(count:stateSlots:chunkElements:)``:
    /// each a run of adjacent descriptors that continue one another in memory.
    private(set) var runs: UnsafeMutablePointer<KernelTensor>
    private(set) var runOffsets: UnsafeMutablePointer<Int64>
    /// How many runs the last coalescing made.
    private(set) var runCount = 0
    let plan: UnsafeMutablePointer<KernelPlan>

    init() {
        descriptors = .allocate(capacity: 1)
        offsets = .allocate(capacity: 1)
        scalars = .allocate(byteCount: 64, alignment: 64)
        elementBytes = .allocate(capacity: 1)
        runs = .allocate(capacity: 1)
        runOffsets = .allocate(capacity: 2)
        plan = .allocate(capacity: 1)
        plan.initialize(to: KernelPlan())
    }

    deinit {
        descriptors.deallocate()
        offsets.deallocate()
        scalars.deallocate()
        elementBytes.deallocate()
        runs.deallocate()
        runOffsets.deallocate()
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
            elementBytes.deallocate()
            runs.deallocate()
            runOffsets.deallocate()
            descriptors = .allocate(capacity: max(newCapacity, 1))
            descriptors.initialize(repeating: KernelTensor(), count: max(newCapacity, 1))
            offsets = .allocate(capacity: newCapacity + 1)
            elementBytes = .allocate(capacity: max(newCapacity, 1))
            elementBytes.initialize(repeating: 0, count: max(newCapacity, 1))
            runs = .allocate(capacity: max(newCapacity, 1))
            runs.initialize(repeating: KernelTensor(), count: max(newCapacity, 1))
            runOffsets = .allocate(capacity: newCapacity + 1)
            scalars = .allocate(byteCount: max(newCapacity * newStride, 64), alignment: 64)
            capacity = newCapacity
            scalarStride = newStride
        }
    }

    /// How many descriptors the plan covers (joined into runs or not).
    private var descriptorCount = 0

    /// Points the plan at the first `count` descriptors.
    func preparePlan(count: Int, chunkElements: Int) {
        descriptorCount = count
        plan.pointee.tensors = UnsafePointer(descriptors)
        plan.pointee.offsets = UnsafePointer(offsets)
        plan.pointee.tensor_count = Int32(count)
        plan.pointee.chunk_elements = Int64(chunkElements)
    }

    /// Points the plan at runs of the first `count` descriptors: each run is one descriptor or
    /// several consecutive ones that share a kernel and a scalar block and whose parameters,
    /// gradients and each of `stateSlots` state arrays follow one another in memory with nothing
    /// between them (tensors cut one after another from one buffer, and their state laid out
    /// the same way). A run is then one tensor to the kernels: no call, tail or lookup per small
    /// tensor. Its elements, and so every result, are the same, since a rule updates each
    /// element from that element's values and its block's scalars alone, and the launch's
    /// element offsets do not change.
    func coalesceRuns(count: Int, stateSlots: Int, chunkElements: Int) {
        var runCount = 0
        runOffsets[0] = 0
        var runBytes = 0
        for position in 0..<count {
            let next = descriptors[position]
            let width = elementBytes[position]
            if runCount > 0, width == runBytes, continues(runs[runCount - 1], with: next, elementBytes: width, stateSlots: stateSlots) {
                runs[runCount - 1].count += next.count
            } else {
                runs[runCount] = next
                runBytes = width
                runCount += 1
            }
            runOffsets[runCount] = offsets[position + 1]
        }
        self.runCount = runCount
        descriptorCount = count
        plan.pointee.tensors = UnsafePointer(runs)
        plan.pointee.offsets = UnsafePointer(runOffsets)
        plan.pointee.tensor_count = Int32(runCount)
        plan.pointee.chunk_elements = Int64(chunkElements)
    }

    /// Whether `next` starts where `run` ends in every array, under the same kernel and scalars.
    private func continues(_ run: KernelTensor, with next: KernelTensor, elementBytes: Int, stateSlots: Int) -> Bool {
        guard unsafeBitCast(run.kernel, to: Int.self) == unsafeBitCast(next.kernel, to: Int.self),
              run.scalars == next.scalars, let runParam = run.param else { return false }
        let bytes = Int(run.count) * elementBytes
        guard runParam + bytes == next.param, let runGrad = run.grad, runGrad + bytes == next.grad else { return false }
        return withUnsafeBytes(of: run.state) { runState in
            withUnsafeBytes(of: next.state) { nextState in
                let first = runState.bindMemory(to: UnsafeMutableRawPointer?.self)
                let second = nextState.bindMemory(to: UnsafeMutableRawPointer?.self)
                for slot in 0..<stateSlots {
                    switch (first[slot], second[slot]) {
                    case (nil, nil): continue
                    case (let a?, let b?) where a + bytes == b: continue
                    default: return false
                    }
                }
                return true
            }
        }
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
        guard let planOffsets = plan.pointee.offsets else { return counts }
        func covers(_ begin: Int64, _ end: Int64) -> Bool {
            begin < end && Int(begin) < range.upperBound && Int(end) > range.lowerBound
        }
        counts.tensors = (0..<descriptorCount).count { covers(offsets[$0], offsets[$0 + 1]) }
        for tensor in 0..<Int(plan.pointee.tensor_count) {
            if covers(planOffsets[tensor], planOffsets[tensor + 1]) { counts.runs += 1 }
            var begin = max(range.lowerBound, Int(planOffsets[tensor]))
            let stop = min(range.upperBound, Int(planOffsets[tensor + 1]))
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
