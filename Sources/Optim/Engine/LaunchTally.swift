import Synchronization

/// Counts what the engine's launches did under an ``Execution`` that carries this tally: how
/// many went to more than one thread, how many of those more than one thread really worked
/// on, how many chunks ran and how many chunk boundaries fell inside a tensor. Tests and
/// `optim verify-golden` read it to show that a configuration crosses threads, chunk
/// boundaries and vector tails rather than assume it. An execution without a tally (the
/// default) pays one nil check per launch.
public final class LaunchTally: Sendable {
    /// What the launches counted so far did.
    public struct Counts: Sendable, Equatable, CustomStringConvertible {
        /// Launches with at least one element (or job).
        public var launches = 0
        /// Launches handed to more than one thread (past the serial threshold).
        public var threadedLaunches = 0
        /// Threaded launches in which at least two threads processed chunks: the work was
        /// really split. Which thread claims which chunk is up to the scheduler, so a short
        /// launch may still run on one thread.
        public var sharedLaunches = 0
        /// Chunks (or per-tensor jobs) run.
        public var chunks = 0
        /// Chunk boundaries that fall strictly inside a tensor, so that one tensor's elements
        /// are updated by two chunks.
        public var boundariesInsideTensors = 0
        /// Pieces of a tensor within one chunk whose length is not a multiple of 8: their loop
        /// ends in a partial vector at every vector width (8 doubles, 16 floats).
        public var piecesEndingInPartialVectors = 0
        /// Tensors with elements in a launch, summed over launches.
        public var tensors = 0
        /// Runs the kernels were called on for those tensors: the engine joins tensors that
        /// continue one another in memory (``Tensor/packedZeros(_:dtype:)``) into one run, so
        /// fewer runs than tensors shows that it did.
        public var runs = 0

        /// Counts of zero.
        public init() {}

        /// Every count in one sentence.
        public var description: String {
            "\(launches) launches, \(threadedLaunches) on more than one thread (\(sharedLaunches) split between "
                + "threads), \(chunks) chunks, \(boundariesInsideTensors) chunk boundaries inside a tensor, "
                + "\(piecesEndingInPartialVectors) pieces ending in a partial vector, \(tensors) tensors in \(runs) runs"
        }
    }

    private let state = Mutex(Counts())

    /// A tally of zero; pass it to ``Execution/init(threads:backend:instructionSet:serialThreshold:chunkElements:launchTally:)``.
    public init() {}

    /// The counts so far.
    public var counts: Counts { state.withLock { $0 } }

    func add(_ launch: Counts) {
        state.withLock { counts in
            counts.launches += launch.launches
            counts.threadedLaunches += launch.threadedLaunches
            counts.sharedLaunches += launch.sharedLaunches
            counts.chunks += launch.chunks
            counts.boundariesInsideTensors += launch.boundariesInsideTensors
            counts.piecesEndingInPartialVectors += launch.piecesEndingInPartialVectors
            counts.tensors += launch.tensors
            counts.runs += launch.runs
        }
    }
}
