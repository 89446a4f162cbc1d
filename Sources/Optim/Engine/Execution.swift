#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch

/// How the engine spreads a launch over threads.
public enum Backend: String, CaseIterable, Sendable, CustomStringConvertible {
    /// Every chunk on the calling thread.
    case serial
    /// Helper threads of Dispatch's global queue: a launch offers its work to the helpers that
    /// are awake while the calling thread works, and withdraws what none took; a helper stays
    /// awake for 100 us after each launch, then returns its thread to Dispatch.
    case dispatch
    /// An OpenMP runtime (libomp, or GCC's libgomp), loaded at run time.
    case openMP = "openmp"

    /// The name `OPTIM_BACKEND` takes: `serial`, `dispatch` or `openmp`.
    public var description: String { rawValue }
}

/// The instruction-set tier of the element loops. All tiers compute the same bits; forcing a
/// lower tier is for testing that and for measuring.
public enum InstructionSet: String, CaseIterable, Sendable, Comparable, CustomStringConvertible {
    /// x86-64 baseline (SSE2); the only tier on other architectures.
    case baseline
    /// x86-64-v3: AVX2, FMA, F16C (FMA is not used: it would change bits).
    case avx2
    /// x86-64-v4: AVX-512 with 512-bit vectors.
    case avx512

    /// The highest tier this CPU runs.
    public static var best: InstructionSet { Kernels.bestInstructionSet }

    /// The tiers this CPU runs, lowest first.
    public static var supported: [InstructionSet] {
        let best = self.best
        return allCases.filter { $0 <= best }
    }

    /// Whether `a` is a lower tier than `b` (baseline < avx2 < avx512).
    public static func < (a: InstructionSet, b: InstructionSet) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }

    /// The name `OPTIM_ISA` takes: `baseline`, `avx2` or `avx512`.
    public var description: String { rawValue }
}

/// Where and how an optimizer runs its element loops: thread count, backend, instruction set,
/// and the size below which work stays on the calling thread.
///
/// The defaults come from the environment: `OPTIM_NUM_THREADS` (default: every core),
/// `OPTIM_BACKEND` (`dispatch`, `openmp` or `serial`; default `dispatch`) and `OPTIM_ISA`
/// (`baseline`, `avx2` or `avx512`; default: the best the CPU runs). Results are bitwise the
/// same for every choice.
public struct Execution: Sendable, Equatable, CustomStringConvertible {
    /// Threads a launch may use (at least 1).
    public let threads: Int
    /// How threads are started.
    public let backend: Backend
    /// The tier of the element loops.
    public let instructionSet: InstructionSet
    /// Launches with fewer elements run on the calling thread: waking threads would cost more
    /// than it saves. The default depends on the backend.
    public let serialThreshold: Int
    /// Elements per chunk that a thread claims at a time.
    public private(set) var chunkElements: Int
    /// Where launches under this execution are counted, if anywhere (tests and reference
    /// replays use it to show that work really crosses threads and chunk boundaries).
    public let launchTally: LaunchTally?

    /// The default serial threshold of a backend, in elements of Adam-like work, measured on a
    /// 2-core AMD EPYC (Docs/benchmarks.md, "Where threads start to pay"): OpenMP's threads
    /// spin between parallel regions and pay from about 64K elements. The Dispatch threshold was
    /// measured when that backend used `concurrentPerform`, which returns only after every
    /// iteration ran (so the calling thread waited for a sleeping worker to wake up): two
    /// threads paid only from about 1M elements.
    public static func defaultSerialThreshold(for backend: Backend) -> Int {
        switch backend {
        case .serial: Int.max
        case .dispatch: 600_000
        case .openMP: 48_000
        }
    }
    /// The default chunk, in elements.
    public static let defaultChunkElements = 65_536

    /// Validates and builds an execution; throws if the CPU lacks `instructionSet` or no OpenMP
    /// runtime can be loaded for `.openMP`.
    public init(threads: Int = Execution.coreCount, backend: Backend = .dispatch,
                instructionSet: InstructionSet = .best,
                serialThreshold: Int? = nil,
                chunkElements: Int = Execution.defaultChunkElements,
                launchTally: LaunchTally? = nil) throws {
        let serialThreshold = serialThreshold ?? Execution.defaultSerialThreshold(for: backend)
        guard threads >= 1 else {
            throw OptimError(.invalidArgument, "thread count must be at least 1, got \(threads)")
        }
        guard serialThreshold >= 0 else {
            throw OptimError(.invalidArgument, "serial threshold must not be negative, got \(serialThreshold)")
        }
        guard chunkElements >= 1 else {
            throw OptimError(.invalidArgument, "chunk size must be at least 1 element, got \(chunkElements)")
        }
        guard instructionSet <= InstructionSet.best else {
            throw OptimError(.unavailable,
                             "this CPU does not run the \(instructionSet) tier; it runs: \(InstructionSet.supported.map(\.rawValue).joined(separator: ", "))")
        }
        if backend == .openMP, case .failure(let error) = OpenMPRuntime.shared {
            throw error
        }
        self.threads = threads
        self.backend = backend
        self.instructionSet = instructionSet
        self.serialThreshold = serialThreshold
        self.chunkElements = chunkElements
        self.launchTally = launchTally
    }

    /// This execution with chunks of `chunkElements` (at least 1), its tally kept.
    func with(chunkElements: Int) -> Execution {
        var copy = self
        copy.chunkElements = max(1, chunkElements)
        return copy
    }

    /// Executions are equal when they run the same way and count into the same tally.
    public static func == (a: Execution, b: Execution) -> Bool {
        a.threads == b.threads && a.backend == b.backend && a.instructionSet == b.instructionSet
            && a.serialThreshold == b.serialThreshold && a.chunkElements == b.chunkElements
            && a.launchTally === b.launchTally
    }

    /// Opens an OpenMP runtime from the first of `libraries` that loads, and returns its name;
    /// throws, naming the package to install, when none does. The OpenMP backend itself uses
    /// the process's runtime, found among libomp, libiomp5 and libgomp.
    @discardableResult
    public static func openOpenMPRuntime(libraries: [String]) throws -> String {
        try OpenMPRuntime.open(candidates: libraries).get().library
    }

    /// The OpenMP library this execution uses, when its backend is OpenMP.
    public var openMPRuntimeLibrary: String? {
        guard backend == .openMP, case .success(let runtime) = OpenMPRuntime.shared else { return nil }
        return runtime.library
    }

    /// The cores this process may run on.
    public static var coreCount: Int {
        max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }

    /// The execution the environment asks for (`OPTIM_NUM_THREADS`, `OPTIM_BACKEND`,
    /// `OPTIM_ISA`); throws on a value it cannot use.
    public static func fromEnvironment() throws -> Execution {
        func value(_ name: String) -> String? {
            guard let raw = getenv(name) else { return nil }
            let text = String(cString: raw).trimmingCharacters()
            return text.isEmpty ? nil : text
        }
        var threads = coreCount
        if let text = value("OPTIM_NUM_THREADS") {
            guard let parsed = Int(text), parsed >= 1 else {
                throw OptimError(.invalidArgument, "OPTIM_NUM_THREADS must be a positive integer, got '\(text)'")
            }
            threads = parsed
        }
        func choice<Choice: RawRepresentable & CaseIterable>(_ name: String, default: Choice) throws -> Choice
        where Choice.RawValue == String {
            guard let text = value(name) else { return `default` }
            guard let parsed = Choice(rawValue: text.lowercased()) else {
                let names = Choice.allCases.map(\.rawValue).joined(separator: ", ")
                throw OptimError(.invalidArgument, "\(name) must be one of \(names), got '\(text)'")
            }
            return parsed
        }
        let backend = try choice("OPTIM_BACKEND", default: Backend.dispatch)
        let isa = try choice("OPTIM_ISA", default: InstructionSet.best)
        return try Execution(threads: threads, backend: backend, instructionSet: isa)
    }

    /// Threads, backend and tier, as in `2 threads, dispatch, avx512`.
    public var description: String {
        "\(threads) thread\(threads == 1 ? "" : "s"), \(backend), \(instructionSet)"
    }
}

extension String {
    fileprivate func trimmingCharacters() -> String {
        var scalars = Substring(self)
        while let first = scalars.first, first.isWhitespace { scalars.removeFirst() }
        while let last = scalars.last, last.isWhitespace { scalars.removeLast() }
        return String(scalars)
    }
}
