internal import COptimKernels
import Dispatch

// The one file that imports the kernel target: everything else in the library speaks Swift.

typealias KernelTensor = optim_tensor
typealias KernelPlan = optim_plan
typealias SegmentFunction = optim_segment_fn
typealias AdafactorJob = optim_adafactor_job
typealias MuonJob = optim_muon_job
typealias ScratchPool = optim_scratch_pool

/// A rule's loops, one table per dtype and instruction-set tier, indexed by flags, and typed by
/// the rule's scalars: an algorithm names its rule (`static let rule = KernelRule.adadelta`), its
/// `Scalars` follow from it, and a rule paired with another rule's scalars does not compile.
struct KernelRule<Scalars>: Sendable {
    /// The rule's loops for one dtype and tier.
    let table: @Sendable (_ dtype: DType, _ isa: InstructionSet) -> UnsafeBufferPointer<SegmentFunction?>

    /// A rule of the kernel target, with a loop per tier.
    init(builtIn kernels: @escaping @convention(c) (optim_dtype, optim_isa, UnsafeMutablePointer<UInt32>?)
            -> UnsafePointer<SegmentFunction?>?) {
        table = { dtype, isa in
            var bits: UInt32 = 0
            let base = kernels(dtype.cValue, isa.cValue, &bits)!
            return UnsafeBufferPointer(start: base, count: 1 << Int(bits))
        }
    }

    /// A rule written in Swift: one table per dtype, at whatever the build compiled for.
    init(swiftRuleOf: Scalars.Type) {
        table = { dtype, _ in Kernels.swiftRuleTable(dtype: dtype) }
    }
}

// Each built-in rule's binding: its table, typed by the scalars its header declares.
extension KernelRule where Scalars == optim_sgd_scalars { static var sgd: Self { Self(builtIn: optim_sgd_kernels) } }
extension KernelRule where Scalars == optim_adam_scalars { static var adam: Self { Self(builtIn: optim_adam_kernels) } }
extension KernelRule where Scalars == optim_rmsprop_scalars { static var rmsprop: Self { Self(builtIn: optim_rmsprop_kernels) } }
extension KernelRule where Scalars == optim_adagrad_scalars {
    static var adagrad: Self { Self(builtIn: optim_adagrad_kernels) }
    static var sparseAdagrad: Self { Self(builtIn: optim_sparse_adagrad_kernels) }
}
extension KernelRule where Scalars == optim_adadelta_scalars { static var adadelta: Self { Self(builtIn: optim_adadelta_kernels) } }
extension KernelRule where Scalars == optim_adamax_scalars { static var adamax: Self { Self(builtIn: optim_adamax_kernels) } }
extension KernelRule where Scalars == optim_asgd_scalars { static var asgd: Self { Self(builtIn: optim_asgd_kernels) } }
extension KernelRule where Scalars == optim_nadam_scalars { static var nadam: Self { Self(builtIn: optim_nadam_kernels) } }
extension KernelRule where Scalars == optim_radam_scalars { static var radam: Self { Self(builtIn: optim_radam_kernels) } }
extension KernelRule where Scalars == optim_rprop_scalars { static var rprop: Self { Self(builtIn: optim_rprop_kernels) } }
extension KernelRule where Scalars == optim_sparse_adam_scalars { static var sparseAdam: Self { Self(builtIn: optim_sparse_adam_kernels) } }

typealias ProbeKernelScalars = optim_bandwidth_probe_scalars
extension KernelRule where Scalars == ProbeKernelScalars {
    static var bandwidthProbe: Self { Self(builtIn: optim_bandwidth_probe_kernels) }
}

/// Flags of the rules other than SGD and Adam.
enum RuleFlags {
    static let maximize = UInt32(OPTIM_RULE_MAXIMIZE)
    static let weightDecay = UInt32(OPTIM_RULE_WEIGHT_DECAY)
    static let decoupled = UInt32(OPTIM_RULE_DECOUPLED)
    static let rmspropMomentum = UInt32(OPTIM_RMSPROP_MOMENTUM)
    static let rmspropCentered = UInt32(OPTIM_RMSPROP_CENTERED)
    static let asgdCopyAverage = UInt32(OPTIM_ASGD_COPY_AVERAGE)
    static let radamRectify = UInt32(OPTIM_RADAM_RECTIFY)
    static let rpropInitialize = UInt32(OPTIM_RPROP_INITIALIZE)

    static func common(maximize: Bool, weightDecay: Double) -> UInt32 {
        (maximize ? Self.maximize : 0) | (weightDecay != 0 ? Self.weightDecay : 0)
    }
}

enum SGDFlags {
    static let maximize = UInt32(OPTIM_SGD_MAXIMIZE)
    static let weightDecay = UInt32(OPTIM_SGD_WEIGHT_DECAY)
    static let momentum = UInt32(OPTIM_SGD_MOMENTUM)
    static let momentumInit = UInt32(OPTIM_SGD_MOMENTUM_INIT)
    static let nesterov = UInt32(OPTIM_SGD_NESTEROV)
}

enum AdamFlags {
    static let maximize = UInt32(OPTIM_ADAM_MAXIMIZE)
    static let weightDecay = UInt32(OPTIM_ADAM_WEIGHT_DECAY)
    static let decoupled = UInt32(OPTIM_ADAM_DECOUPLED)
    static let amsgrad = UInt32(OPTIM_ADAM_AMSGRAD)
}

enum Kernels {
    static let maxStateSlots = Int(OPTIM_MAX_STATE)

    // The per-tensor jobs (COptimTensorKernels.h).
    static let adafactorMaximize = UInt32(OPTIM_ADAFACTOR_MAXIMIZE)
    static let adafactorWeightDecay = UInt32(OPTIM_ADAFACTOR_WEIGHT_DECAY)
    static let muonNesterov = UInt32(OPTIM_MUON_NESTEROV)

    static func adafactorKernel(dtype: DType, isa: InstructionSet) -> SegmentFunction? {
        optim_adafactor_kernel(dtype.cValue, isa.cValue)
    }
    static func muonKernel(dtype: DType, isa: InstructionSet) -> SegmentFunction? {
        optim_muon_kernel(dtype.cValue, isa.cValue)
    }
    static func adafactorScratchBytes(rows: Int, cols: Int) -> Int {
        Int(optim_adafactor_scratch_bytes(Int64(rows), Int64(cols)))
    }
    static func muonScratchBytes(rows: Int, cols: Int) -> Int {
        Int(optim_muon_scratch_bytes(Int64(rows), Int64(cols)))
    }

    static var bestInstructionSet: InstructionSet {
        switch optim_isa_best_supported() {
        case OPTIM_ISA_AVX512: .avx512
        case OPTIM_ISA_AVX2: .avx2
        default: .baseline
        }
    }

    static var compiledTierCount: Int { Int(optim_isa_tier_count()) }

    /// Asks for the cache line of `object`'s stored properties ahead of their use.
    @inline(__always) static func prefetchFields(of object: AnyObject) {
        // Past the object header (16 bytes): the fields an engine reads at each step.
        optim_prefetch(Unmanaged.passUnretained(object).toOpaque() + 32)
    }

    static func reset(_ plan: UnsafeMutablePointer<KernelPlan>, range: Range<Int>) {
        optim_plan_reset(plan, Int64(range.lowerBound), Int64(range.upperBound))
    }

    static func work(_ plan: UnsafeMutablePointer<KernelPlan>) {
        optim_plan_work(plan)
    }

    static func convert(from source: UnsafeBufferPointer<Double>, to destination: UnsafeMutableRawPointer, dtype: DType) {
        optim_convert_from_double(source.baseAddress, destination, Int64(source.count), dtype.cValue)
    }

    static func convert(from source: UnsafeRawPointer, dtype: DType, to destination: UnsafeMutableBufferPointer<Double>) {
        optim_convert_to_double(source, destination.baseAddress, Int64(destination.count), dtype.cValue)
    }

    /// `value` rounded to `dtype` and back, by the conversions tensors use.
    static func rounded(_ value: Double, to dtype: DType) -> Double {
        var source = value, stored: UInt64 = 0, result = 0.0
        optim_convert_from_double(&source, &stored, 1, dtype.cValue)
        optim_convert_to_double(&stored, &result, 1, dtype.cValue)
        return result
    }

    /// Sums the rows of `source` that share an index (see `optim_sum_rows`).
    static func sumRows(_ source: Tensor, order: [Int64], starts: [Int64], width: Int, into destination: Tensor) {
        order.withUnsafeBufferPointer { order in
            starts.withUnsafeBufferPointer { starts in
                optim_sum_rows(source.storage.base, order.baseAddress, starts.baseAddress, Int64(starts.count - 1),
                               Int64(width), destination.storage.base, source.dtype.cValue)
            }
        }
    }

    static func hash(_ bytes: UnsafeRawPointer, byteCount: Int, seed: UInt64) -> UInt64 {
        optim_hash_bytes(bytes, Int64(byteCount), seed)
    }

    /// x · y of two float32 vectors in the order of torch's BLAS, rounded to float.
    static func torchOrderDotFloat32(_ x: Tensor, _ y: Tensor) -> Double {
        optim_torch_order_dot_float32(x.storage.base.assumingMemoryBound(to: Float.self),
                                      y.storage.base.assumingMemoryBound(to: Float.self), Int64(x.count))
    }

    /// Σ|xᵢ| of a float32 or float64 tensor in torch's order of a sum, on the calling thread.
    static func torchOrderSumAbs(_ tensor: Tensor) -> Double {
        optim_torch_order_sum_abs(tensor.baseAddress, Int64(tensor.count), tensor.dtype.cValue)
    }
}

// Rules written in Swift (ElementwiseRule) run behind one C entry per storage dtype: the
// engine's plan calls it like any kernel, and it forwards the segment to the rule's loops,
// which the descriptor's scalar block names (SwiftRuleScalars).
extension Kernels {
    private static let bestForConversions = bestInstructionSet.cValue

    /// Half-type blocks of Swift rules, converted by the best tier: every tier gives the same
    /// bits (integer code in the baseline tier, F16C's conversions above it).
    static func widen(_ source: UnsafeRawPointer, to destination: UnsafeMutablePointer<Float>, count: Int, dtype: DType) {
        optim_widen_to_float(source, destination, Int64(count), dtype.cValue, bestForConversions)
    }

    static func narrow(_ source: UnsafePointer<Float>, to destination: UnsafeMutableRawPointer, count: Int, dtype: DType) {
        optim_narrow_from_float(source, destination, Int64(count), dtype.cValue, bestForConversions)
    }

    /// The kernel table of Swift rules for `dtype`: entry 1 is a parameter's first update.
    static func swiftRuleTable(dtype: DType) -> UnsafeBufferPointer<SegmentFunction?> {
        swiftRuleTables[dtype.ordinal]
    }

    // Written once, read only after. C function pointers cannot capture, so each dtype and
    // first-update flag has its own entry.
    nonisolated(unsafe) private static let swiftRuleTables: [UnsafeBufferPointer<SegmentFunction?>] = DType.allCases.map { dtype in
        let table = UnsafeMutableBufferPointer<SegmentFunction?>.allocate(capacity: 2)
        switch dtype {
        case .float32:
            table[0] = { runSwiftRuleSegment($0, $1, $2, .float32, first: false) }
            table[1] = { runSwiftRuleSegment($0, $1, $2, .float32, first: true) }
        case .float64:
            table[0] = { runSwiftRuleSegment($0, $1, $2, .float64, first: false) }
            table[1] = { runSwiftRuleSegment($0, $1, $2, .float64, first: true) }
        case .float16:
            table[0] = { runSwiftRuleSegment($0, $1, $2, .float16, first: false) }
            table[1] = { runSwiftRuleSegment($0, $1, $2, .float16, first: true) }
        case .bfloat16:
            table[0] = { runSwiftRuleSegment($0, $1, $2, .bfloat16, first: false) }
            table[1] = { runSwiftRuleSegment($0, $1, $2, .bfloat16, first: true) }
        }
        return UnsafeBufferPointer(table)
    }
}

private func runSwiftRuleSegment(_ tensor: UnsafePointer<KernelTensor>?, _ begin: Int64, _ end: Int64,
                                 _ dtype: DType, first: Bool) {
    let descriptor = tensor.unsafelyUnwrapped.pointee
    let block = descriptor.scalars.unsafelyUnwrapped
    let header = block.load(as: SwiftRuleHeader.self)
    header.rule.runSegment(RuleSegment(
        parameter: descriptor.param.unsafelyUnwrapped, gradient: descriptor.grad.unsafelyUnwrapped,
        state: descriptor.state, scalars: block + header.scalarsOffset, begin: Int(begin), end: Int(end),
        dtype: dtype, isFirstUpdate: first))
}

/// An opened OpenMP runtime.
struct OpenMPRuntime: @unchecked Sendable {
    let library: String
    private let runtime: optim_openmp_runtime

    /// The libraries tried, in order: LLVM's libomp (Debian's libomp-dev), Intel's name for
    /// it, then GCC's libgomp, which exports the same entry point.
    static let defaultCandidates = ["libomp.so.5", "libomp.so", "libiomp5.so", "libgomp.so.1", "libomp.dylib"]

    static func open(candidates: [String]) -> Result<OpenMPRuntime, OptimError> {
        var runtime = optim_openmp_runtime()
        var message = [CChar](repeating: 0, count: 2048)
        let cStrings = candidates.map { strdup($0) }
        defer { cStrings.forEach { free($0) } }
        let status = cStrings.map { UnsafePointer($0) }.withUnsafeBufferPointer { names in
            optim_openmp_open(names.baseAddress, Int32(names.count), &runtime, &message, message.count)
        }
        guard status >= 0 else {
            let detail = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            return .failure(OptimError(.unavailable, """
                the OpenMP backend needs an OpenMP runtime and none could be loaded (\(detail)); \
                install the system package libomp-dev (apt-get install libomp-dev), or use the \
                dispatch backend
                """))
        }
        return .success(OpenMPRuntime(library: candidates[Int(status)], runtime: runtime))
    }

    /// The process's runtime, opened on first use.
    static let shared: Result<OpenMPRuntime, OptimError> = open(candidates: defaultCandidates)

    func run(_ plan: UnsafeMutablePointer<KernelPlan>, threads: Int) {
        withUnsafePointer(to: runtime) { optim_openmp_run($0, plan, Int32(threads)) }
    }
}

extension DType {
    var cValue: optim_dtype {
        switch self {
        case .float32: OPTIM_DTYPE_FLOAT32
        case .float64: OPTIM_DTYPE_FLOAT64
        case .float16: OPTIM_DTYPE_FLOAT16
        case .bfloat16: OPTIM_DTYPE_BFLOAT16
        }
    }
}

extension InstructionSet {
    var cValue: optim_isa {
        switch self {
        case .baseline: OPTIM_ISA_BASELINE
        case .avx2: OPTIM_ISA_AVX2
        case .avx512: OPTIM_ISA_AVX512
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The Dispatch backend's helpers (DispatchTeam.cpp): threads that Dispatch runs for the
/// team, which take part in a launch only if they are awake when it starts or asleep in the
/// team (a launch wakes them), spin for `spinTime` after each plan, so that the launches of
/// one step find them running, then sleep for up to `parkTime`, so that the next step wakes
/// them without starting them again.
struct DispatchTeam: @unchecked Sendable {
    /// How long a helper spins for the next plan: long enough to bridge the launches of a step,
    /// short enough that an idle process spends no measurable time (Docs/benchmarks.md,
    /// "Launch latency").
    static let spinTime: Duration = .microseconds(100)
    /// How long a helper then sleeps, waiting to be woken, before it returns its thread to
    /// Dispatch. Starting a helper again goes through Dispatch's queue, which allocates; a
    /// training loop that steps at least once a second wakes its helpers instead, and a step
    /// allocates nothing. A sleeping helper takes no processor time.
    static let parkTime: Duration = .seconds(1)

    private let team: OpaquePointer

    /// The process's team, or nil when its few kilobytes cannot be allocated (launches then
    /// use `concurrentPerform`).
    static let shared: DispatchTeam? = {
        func nanoseconds(_ duration: Duration) -> Int64 {
            let (seconds, attoseconds) = duration.components
            return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
        }
        return optim_team_create(nanoseconds(spinTime), nanoseconds(parkTime)).map(DispatchTeam.init)
    }()

    func run(_ plan: UnsafeMutablePointer<KernelPlan>, threads: Int) {
        optim_team_run(team, plan, Int32(clamping: threads), startHelper)
    }
}

/// Starts a helper's loop on its slot's queue. A C function pointer cannot capture: the team
/// and slot come as arguments. Starting allocates Dispatch's queue item; a helper asleep in the
/// team is woken instead (see `parkTime`), so that steps taken at least once a second allocate
/// nothing.
private let startHelper: @convention(c) (OpaquePointer?, Int32) -> Void = { team, slot in
    let helper = HelperSlot(team: team, slot: slot)
    helperQueues[Int(slot)].async { optim_team_serve(helper.team, helper.slot) }
}

/// A team and slot handed to the thread that serves it; the team lives as long as the process.
private struct HelperSlot: @unchecked Sendable {
    let team: OpaquePointer?
    let slot: Int32
}

/// Per helper slot, a serial queue. Dispatch runs a serial queue's work on a thread of its own
/// rather than one of the threads of its global queues, which are as many as the cores: a
/// helper asleep in the team does not take a thread from the application's own Dispatch work.
private let helperQueues: [DispatchQueue] = (0..<Int(OPTIM_TEAM_MAX_HELPERS)).map { slot in
    DispatchQueue(label: "swift-optim.team-helper.\(slot)", qos: .userInitiated)
}
