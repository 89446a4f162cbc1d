/// An element-wise optimizer written in Swift: the per-element math on vectors, the state
/// slots it keeps by torch-style names, and the per-step scalars it computes from its options
/// and the step count. ``RuleOptimizer`` runs it on the library's engine with everything a
/// built-in optimizer gets: parameter groups, chunks spread over threads on either backend,
/// the for-loop and multi-tensor paths with the same bits, float16 and bfloat16 storage with
/// `Float` math, state dicts, schedulers and `zeroGrad`.
///
/// A signed-momentum rule, `m ← β·m + g`, `p ← p − lr·sign(m)`:
///
///     struct SignedMomentum: ElementwiseRule {
///         struct Options: TorchFieldOptions, DefaultOptions {
///             var lr = 1e-3, momentum = 0.9
///             static let torchFields: [OptionField<Self>] = [.number("lr", \.lr), .number("momentum", \.momentum)]
///         }
///         struct Scalars { var lr: Double, momentum: Double }
///         static let name = "SignedMomentum"
///         static let stateNames = ["momentum_buffer"]
///         static func scalars(_ o: Options, step: Int, state: inout NoScalarState) -> Scalars {
///             Scalars(lr: o.lr, momentum: o.momentum)
///         }
///         static func update<V: RuleVector>(parameter p: inout V, gradient g: V, state: inout RuleState<V>,
///                                           scalars s: Scalars) {
///             state[0] = V(s.momentum) * state[0] + g
///             p = p - V(s.lr) * V.sign(state[0])
///         }
///     }
///     let optimizer = try RuleOptimizer<SignedMomentum>(parameters, options: .init(lr: 0.01))
///
/// `update` sees 16 `Float` lanes or 8 `Double` lanes (``RuleVector``); the tail of a tensor
/// runs the same code on a vector padded with zeros, whose extra lanes are discarded. State
/// slots start at zero before a parameter's first update (`scalars` receives `step` 1 then).
/// Operations are IEEE lane by lane and never fused, so every thread count, backend, chunk size
/// and path gives the same bits.
///
/// Speed: a rule in Swift is compiled for whatever its package's build targets: the x86-64
/// baseline (SSE2) by default, where a built-in rule of the library picks AVX-512 or AVX2 at
/// run time. An application can build for its machine with
/// `swift build -c release -Xswiftc -target-cpu -Xswiftc native` (or `x86-64-v3`, `x86-64-v4`);
/// Docs/benchmarks.md compares the two forms of one rule.
public protocol ElementwiseRule: ElementwiseRuleSegments {
    /// The options, with torch-style names for state dicts (``TorchFieldOptions``).
    associatedtype Options: TorchFieldOptions & DefaultOptions
    /// What `update` needs besides the elements, computed once per step and parameter group in
    /// `Double` (learning rate, bias corrections, ...). A plain value type.
    associatedtype Scalars
    /// Scalar state a parameter carries from step to step (``NoScalarState`` for none).
    associatedtype ScalarState: RuleScalarState = NoScalarState

    /// The optimizer's name, for messages.
    static var name: String { get }
    /// The state tensors' names, in slot order (at most four): `state[0]` is `stateNames[0]`.
    static var stateNames: [String] { get }
    /// Whose step count `scalars` sees (default: ``RuleStepCounting/perParameter``).
    static var stepCounting: RuleStepCounting { get }
    /// Throws when options are out of range; the default checks that `lr` is finite and ≥ 0, then
    /// each field's requirement (``TorchFieldOptions/validateFields()``).
    static func validate(_ options: Options) throws
    /// The scalar state before a parameter's first update, from its group's options and the
    /// optimizer's defaults (the options it was built with). Default: `ScalarState()`.
    static func initialScalarState(_ options: Options, defaults: Options) -> ScalarState
    /// The scalars of a parameter's `step`-th update (counted from 1); advances its scalar
    /// state to what it is after that update.
    static func scalars(_ options: Options, step: Int, state: inout ScalarState) -> Scalars
    /// Whether a state slot is kept under these options (default: every slot). A slot that is
    /// not kept is neither allocated nor loaded; `update` sees zeros there.
    static func usesSlot(_ slot: Int, _ options: Options) -> Bool
    /// The update of one vector of elements.
    static func update<V: RuleVector>(parameter: inout V, gradient: V, state: inout RuleState<V>, scalars: Scalars)
}

/// Whose step count and scalar state a rule keeps.
public enum RuleStepCounting: Sendable {
    /// Each parameter's: they advance when the parameter is updated (torch's optimizers).
    case perParameter
    /// Each parameter group's: they advance at every step, whether or not a parameter of the
    /// group has a gradient (pytorch-optimizer, schedulefree). A state dict keeps them in the
    /// group's entry of `param_groups`.
    case perGroup
}

extension ElementwiseRule {
    /// Each parameter counts its own steps, as torch's optimizers do.
    public static var stepCounting: RuleStepCounting { .perParameter }

    /// Every slot is kept.
    public static func usesSlot(_ slot: Int, _ options: Options) -> Bool { true }

    /// `ScalarState()`, whatever the options.
    public static func initialScalarState(_ options: Options, defaults: Options) -> ScalarState { ScalarState() }

    /// Checks that `lr` is finite and ≥ 0, then each field's requirement in the table's order
    /// (``TorchFieldOptions/validateFields()``).
    public static func validate(_ options: Options) throws { try options.validateFields() }
}

/// Scalar state a rule keeps per parameter (a running product, a sum of weights): its values
/// and the names they have in a state dict, from one table of fields.
///
///     struct ScalarState: RuleScalarState {
///         var weightSum = 0.0, lrMax = -1.0
///         static let fields: [ScalarStateField<Self>] = [.double("weight_sum", \.weightSum), .double("lr_max", \.lrMax)]
///     }
public protocol RuleScalarState: Equatable {
    /// The state before a parameter's first update.
    init()
    /// Every value under its state-dict name.
    static var fields: [ScalarStateField<Self>] { get }
}

/// One value of a rule's scalar state under its state-dict name. A state dict holds it as a
/// number; a `Float` value is kept rounded to `Float`, as torch keeps a float32 tensor.
// Key paths are immutable values, safe to share between threads.
public enum ScalarStateField<State>: @unchecked Sendable {
    /// A `Double` value under a name.
    case double(String, WritableKeyPath<State, Double>)
    /// A `Float` value under a name (kept rounded to `Float`, as a float32 tensor of torch).
    case float(String, WritableKeyPath<State, Float>)

    /// The value's name in a state dict.
    public var name: String {
        switch self {
        case .double(let name, _), .float(let name, _): name
        }
    }
}

extension RuleScalarState {
    /// The names of ``values``, which a state dict must hold.
    public static var names: [String] { fields.map(\.name) }

    /// The values by name.
    public var values: [String: Double] {
        var values: [String: Double] = [:]
        for field in Self.fields {
            switch field {
            case .double(let name, let path): values[name] = self[keyPath: path]
            case .float(let name, let path): values[name] = Double(self[keyPath: path])
            }
        }
        return values
    }

    /// The state from values by name; a name `values` lacks keeps its value in `init()`.
    public init(values: [String: Double]) {
        self.init()
        for field in Self.fields {
            switch field {
            case .double(let name, let path): if let value = values[name] { self[keyPath: path] = value }
            case .float(let name, let path): if let value = values[name] { self[keyPath: path] = Float(value) }
            }
        }
    }
}

/// The scalar state of a rule that keeps none.
public struct NoScalarState: RuleScalarState {
    /// The empty state.
    public init() {}
    /// No fields.
    public static var fields: [ScalarStateField<Self>] { [] }
}

/// The state slots of one vector of elements, by slot number (the order of
/// ``ElementwiseRule/stateNames``).
public struct RuleState<V: RuleVector> {
    @usableFromInline var slot0 = V(), slot1 = V(), slot2 = V(), slot3 = V()
    /// Whether this is the parameter's first update: its state slots hold zeros, and a rule
    /// whose state starts elsewhere (a copy of the parameter, of the gradient) sets it now.
    public let isFirstUpdate: Bool

    @inlinable @inline(__always) init(isFirstUpdate: Bool) { self.isFirstUpdate = isFirstUpdate }

    /// The vector of slot `slot` (``ElementwiseRule/stateNames``' order): zeros for a slot that
    /// is not kept.
    @inlinable public subscript(slot: Int) -> V {
        @inline(__always) get {
            switch slot {
            case 0: slot0
            case 1: slot1
            case 2: slot2
            default: slot3
            }
        }
        @inline(__always) set {
            switch slot {
            case 0: slot0 = newValue
            case 1: slot1 = newValue
            case 2: slot2 = newValue
            default: slot3 = newValue
            }
        }
    }
}

/// The element loops of a rule, with the engine's entry point. Every ``ElementwiseRule`` gets
/// them from the default implementation, compiled into the module that defines the rule.
public protocol ElementwiseRuleSegments {
    /// Runs the rule over one segment of one tensor. The engine's entry point.
    static func runSegment(_ segment: RuleSegment)
}

/// A segment of one tensor that a worker updates: the arrays, the elements `[begin, end)`,
/// the storage type and the step's scalars.
public struct RuleSegment {
    @usableFromInline let parameter: UnsafeMutableRawPointer
    @usableFromInline let gradient: UnsafeRawPointer
    @usableFromInline let state: (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, UnsafeMutableRawPointer?,
                                  UnsafeMutableRawPointer?)
    @usableFromInline let scalars: UnsafeRawPointer
    @usableFromInline let begin: Int
    @usableFromInline let end: Int
    @usableFromInline let dtype: DType
    @usableFromInline let isFirstUpdate: Bool

    init(parameter: UnsafeMutableRawPointer, gradient: UnsafeRawPointer,
         state: (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?, UnsafeMutableRawPointer?,
                 UnsafeMutableRawPointer?),
         scalars: UnsafeRawPointer, begin: Int, end: Int, dtype: DType, isFirstUpdate: Bool) {
        self.parameter = parameter
        self.gradient = gradient
        self.state = state
        self.scalars = scalars
        self.begin = begin
        self.end = end
        self.dtype = dtype
        self.isFirstUpdate = isFirstUpdate
    }

    /// The state arrays of the first `slots` slots, from the segment's first element on.
    @inlinable func stateArrays(_ slots: Int, byteOffset: Int) -> RuleStateArrays {
        RuleStateArrays(count: slots, state.0.map { $0 + byteOffset }, state.1.map { $0 + byteOffset },
                        state.2.map { $0 + byteOffset }, state.3.map { $0 + byteOffset })
    }

    /// Widens `count` half-type elements to `Float`.
    @usableFromInline func widen(_ source: UnsafeRawPointer, to destination: UnsafeMutablePointer<Float>, count: Int) {
        Kernels.widen(source, to: destination, count: count, dtype: dtype)
    }

    /// Rounds `count` `Float` values to the half type (to nearest, ties to even).
    @usableFromInline func narrow(_ source: UnsafePointer<Float>, to destination: UnsafeMutableRawPointer, count: Int) {
        Kernels.narrow(source, to: destination, count: count, dtype: dtype)
    }
}

/// The state arrays of a segment (no array, so that a segment allocates nothing).
@usableFromInline struct RuleStateArrays {
    @usableFromInline let count: Int
    @usableFromInline let a0, a1, a2, a3: UnsafeMutableRawPointer?

    @inlinable init(count: Int, _ a0: UnsafeMutableRawPointer?, _ a1: UnsafeMutableRawPointer?,
                    _ a2: UnsafeMutableRawPointer?, _ a3: UnsafeMutableRawPointer?) {
        self.count = count
        (self.a0, self.a1, self.a2, self.a3) = (a0, a1, a2, a3)
    }

    /// The array of `slot`, nil where the slot is not kept.
    @inlinable subscript(slot: Int) -> UnsafeMutableRawPointer? {
        @inline(__always) get {
            switch slot {
            case 0: a0
            case 1: a1
            case 2: a2
            default: a3
            }
        }
    }
}

/// Elements of half-type storage widened per block: small enough for the stack and L1.
@usableFromInline let ruleHalfBlock = 256

extension ElementwiseRule {
    /// Loads each vector of the segment (widening half types to `Float`), runs
    /// ``ElementwiseRule/update(parameter:gradient:state:scalars:)`` and stores the results.
    @inlinable
    public static func runSegment(_ segment: RuleSegment) {
        let scalars = segment.scalars.load(as: Scalars.self)
        let slots = stateNames.count
        let count = segment.end - segment.begin
        switch segment.dtype {
        case .float32:
            let offset = segment.begin * 4
            runLoop(SIMD16<Float>.self, parameter: segment.parameter + offset, gradient: segment.gradient + offset,
                    state: segment.stateArrays(slots, byteOffset: offset), count: count, scalars: scalars, first: segment.isFirstUpdate)
        case .float64:
            let offset = segment.begin * 8
            runLoop(SIMD8<Double>.self, parameter: segment.parameter + offset, gradient: segment.gradient + offset,
                    state: segment.stateArrays(slots, byteOffset: offset), count: count, scalars: scalars, first: segment.isFirstUpdate)
        case .float16, .bfloat16:
            withUnsafeTemporaryAllocation(of: Float.self, capacity: ruleHalfBlock * 6) { buffer in
                let base = buffer.baseAddress.unsafelyUnwrapped
                let kept = segment.stateArrays(slots, byteOffset: 0)
                func floatSlot(_ slot: Int) -> UnsafeMutableRawPointer? {
                    kept[slot] == nil ? nil : UnsafeMutableRawPointer(base + (2 + slot) * ruleHalfBlock)
                }
                let floatState = RuleStateArrays(count: slots, floatSlot(0), floatSlot(1), floatSlot(2), floatSlot(3))
                var start = segment.begin
                while start < segment.end {
                    let n = min(ruleHalfBlock, segment.end - start)
                    let stored = segment.stateArrays(slots, byteOffset: start * 2)
                    segment.widen(segment.parameter + start * 2, to: base, count: n)
                    segment.widen(segment.gradient + start * 2, to: base + ruleHalfBlock, count: n)
                    for slot in 0..<slots {
                        guard let array = stored[slot], let float = floatState[slot] else { continue }
                        segment.widen(array, to: float.assumingMemoryBound(to: Float.self), count: n)
                    }
                    runLoop(SIMD16<Float>.self, parameter: UnsafeMutableRawPointer(base),
                            gradient: UnsafeRawPointer(base + ruleHalfBlock), state: floatState, count: n,
                            scalars: scalars, first: segment.isFirstUpdate)
                    segment.narrow(base, to: segment.parameter + start * 2, count: n)
                    for slot in 0..<slots {
                        guard let array = stored[slot], let float = floatState[slot] else { continue }
                        segment.narrow(float.assumingMemoryBound(to: Float.self), to: array, count: n)
                    }
                    start += n
                }
            }
        }
    }

    /// The vector loop over `count` contiguous elements; the tail runs on zero-padded vectors.
    @inlinable @inline(__always)
    static func runLoop<V: RuleVector>(_: V.Type, parameter: UnsafeMutableRawPointer, gradient: UnsafeRawPointer,
                                       state: RuleStateArrays, count: Int, scalars: Scalars,
                                       first: Bool) {
        let width = V.scalarCount
        let stride = MemoryLayout<V.Scalar>.stride
        let slots = state.count
        var i = 0
        while i + width <= count {
            let at = i * stride
            var p = parameter.loadUnaligned(fromByteOffset: at, as: V.self)
            let g = gradient.loadUnaligned(fromByteOffset: at, as: V.self)
            var s = RuleState<V>(isFirstUpdate: first)
            for slot in 0..<slots {
                if let array = state[slot] { s[slot] = array.loadUnaligned(fromByteOffset: at, as: V.self) }
            }
            update(parameter: &p, gradient: g, state: &s, scalars: scalars)
            parameter.storeBytes(of: p, toByteOffset: at, as: V.self)
            for slot in 0..<slots {
                if let array = state[slot] { array.storeBytes(of: s[slot], toByteOffset: at, as: V.self) }
            }
            i += width
        }
        guard i < count else { return }
        // The tail: the same vector code on vectors padded with zeros, copied in and out whole.
        let at = i * stride, bytes = (count - i) * stride
        var p = loadTail(V.self, parameter + at, bytes)
        let g = loadTail(V.self, gradient + at, bytes)
        var s = RuleState<V>(isFirstUpdate: first)
        for slot in 0..<slots {
            if let array = state[slot] { s[slot] = loadTail(V.self, array + at, bytes) }
        }
        update(parameter: &p, gradient: g, state: &s, scalars: scalars)
        storeTail(p, parameter + at, bytes)
        for slot in 0..<slots {
            if let array = state[slot] { storeTail(s[slot], array + at, bytes) }
        }
    }

    /// The first `bytes` of a vector from `source`, zeros in the other lanes.
    @inlinable @inline(__always)
    static func loadTail<V: RuleVector>(_: V.Type, _ source: UnsafeRawPointer, _ bytes: Int) -> V {
        var vector = V()
        withUnsafeMutableBytes(of: &vector) { $0.baseAddress.unsafelyUnwrapped.copyMemory(from: source, byteCount: bytes) }
        return vector
    }

    /// Stores the first `bytes` of `vector`.
    @inlinable @inline(__always)
    static func storeTail<V: RuleVector>(_ vector: V, _ destination: UnsafeMutableRawPointer, _ bytes: Int) {
        withUnsafeBytes(of: vector) { destination.copyMemory(from: $0.baseAddress.unsafelyUnwrapped, byteCount: bytes) }
    }
}
