/// Multi-tensor operations over lists of tensors, like torch's `torch._foreach_*` functions,
/// on the engine that runs the optimizers: one launch per call over the concatenation of the
/// lists, cut into chunks that `execution`'s threads claim (see ``Execution``).
///
/// **In place.** Every element-wise operation writes the first list, `x`, index by index:
/// `x[i] ← f(x[i], y[i], …)`. The other lists must have as many tensors as `x`, and each
/// `y[i]` must have the shape and dtype of `x[i]` (different indices may differ). A tensor
/// written at one index must not appear at another index of any list: the indices run in
/// parallel. Mismatched lists throw an ``OptimError`` and change nothing.
///
/// **Arithmetic.** The math runs in `Float` for `float32`, `float16` and `bfloat16` storage
/// (half types are widened on load and rounded to nearest-even on store) and in `Double` for
/// `float64`, as the optimizers' rules do. Scalars are rounded to the math type once per call.
/// Each formula is evaluated as written, one rounding per operation; a fused multiply-add
/// (one rounding for `a·b + c`) is used exactly where torch's CPU kernels fuse: `add` with
/// `alpha`, `axpy` with β = 1 and `lerp`. Fused operations are exactly specified, so every
/// thread count, backend and instruction-set tier gives the same bits (the baseline tier,
/// which has no fma instruction, computes them in software, more slowly).
///
/// **Reductions** (``dot(_:_:execution:)``, ``norm(_:p:execution:)`` and their per-tensor
/// forms) widen every element to `Double` and accumulate in `Double`, whatever the storage.
/// The concatenated list is cut into blocks of 4,096 elements at fixed offsets. Each block's
/// part of each tensor gets one partial: element i of its whole vectors goes to lane i mod 8
/// (for 32- and 16-bit storage, 16 lanes folded pairwise into 8), the tail of fewer than a
/// vector into lanes 0 and 1 by pairs (a last odd element into lane 0), and the lanes are
/// added even ones in order, odd ones in order, then the two. For a float64 tensor of up to
/// 4,095 elements that is the order of the BLAS dot product torch calls on x86, so that LBFGS
/// follows torch's trajectories to the last bit. The partials are then added in position
/// order on the calling thread. The grid depends on the element offsets only, so a reduction
/// gives the same bits for every thread count, backend, instruction-set tier and chunk size.
/// Beyond 4,095 elements torch's BLAS splits the sum by its thread count: results agree with
/// torch's to rounding.
///
/// `execution` defaults to the environment's (``Execution/fromEnvironment()``).
public enum Foreach {
    // MARK: Element-wise

    /// `x[i] ← x[i] + alpha · y[i]`, rounded once (fused multiply-add), as torch's CPU kernel
    /// (torch: `_foreach_add_(x, y, alpha=alpha)`).
    public static func add(_ x: [Tensor], _ y: [Tensor], alpha: Double = 1, execution: Execution? = nil) throws {
        try ForeachLists.check("Foreach.add", x, [y])
        ForeachLauncher().elementwise(.add, x, y, a: alpha, execution: try resolve(execution))
    }

    /// `x[i] ← x[i] + scalar` for every element (torch: `_foreach_add_(x, scalar)`).
    public static func add(_ x: [Tensor], scalar: Double, execution: Execution? = nil) throws {
        try ForeachLists.check("Foreach.add", x, [])
        ForeachLauncher().elementwise(.addScalar, x, a: scalar, execution: try resolve(execution))
    }

    /// `x[i] ← factor · x[i]` (torch: `_foreach_mul_(x, factor)`).
    public static func scale(_ x: [Tensor], by factor: Double, execution: Execution? = nil) throws {
        try ForeachLists.check("Foreach.scale", x, [])
        ForeachLauncher().elementwise(.scale, x, a: factor, execution: try resolve(execution))
    }

    /// `y[i] ← alpha · x[i] + beta · y[i]`: BLAS's axpy and axpby. With `beta` = 1, the
    /// default, it is ``add(_:_:alpha:execution:)``: `y + alpha · x` rounded once; otherwise
    /// `(beta · y) + (alpha · x)`, one rounding per operation. In place on `y`, the first list,
    /// like every operation here.
    public static func axpy(_ y: [Tensor], alpha: Double, _ x: [Tensor], beta: Double = 1,
                            execution: Execution? = nil) throws {
        try ForeachLists.check("Foreach.axpy", y, [x])
        let op: ForeachOperation = beta == 1 ? .add : .axpby
        ForeachLauncher().elementwise(op, y, x, a: alpha, b: beta, execution: try resolve(execution))
    }

    /// `x[i] ← x[i] + (value · y[i]) · z[i]` (torch: `_foreach_addcmul_(x, y, z, value)`).
    public static func addcmul(_ x: [Tensor], _ y: [Tensor], _ z: [Tensor], value: Double = 1,
                               execution: Execution? = nil) throws {
        try ForeachLists.check("Foreach.addcmul", x, [y, z])
        ForeachLauncher().elementwise(.addcmul, x, y, z, a: value, execution: try resolve(execution))
    }

    /// `x[i] ← x[i] + (value · y[i]) / z[i]` (torch: `_foreach_addcdiv_(x, y, z, value)`).
    public static func addcdiv(_ x: [Tensor], _ y: [Tensor], _ z: [Tensor], value: Double = 1,
                               execution: Execution? = nil) throws {
        try ForeachLists.check("Foreach.addcdiv", x, [y, z])
        ForeachLauncher().elementwise(.addcdiv, x, y, z, a: value, execution: try resolve(execution))
    }

    /// `x[i] ← x[i] + weight · (end[i] − x[i])`, computed as torch's CPU `lerp` does: that
    /// form with one fused multiply-add when |weight| < 0.5, `end[i] + (weight − 1) · (end[i] −
    /// x[i])` likewise otherwise, so that both ends are exact (torch: `_foreach_lerp_(x, end,
    /// weight)`).
    public static func lerp(_ x: [Tensor], _ end: [Tensor], weight: Double, execution: Execution? = nil) throws {
        try ForeachLists.check("Foreach.lerp", x, [end])
        let op: ForeachOperation = abs(weight) < 0.5 ? .lerpNear : .lerpFar
        ForeachLauncher().elementwise(op, x, end, a: weight, execution: try resolve(execution))
    }

    /// `x[i] ← √x[i]`, correctly rounded; NaN for negative elements (torch: `_foreach_sqrt_`).
    public static func sqrt(_ x: [Tensor], execution: Execution? = nil) throws {
        try ForeachLists.check("Foreach.sqrt", x, [])
        ForeachLauncher().elementwise(.sqrt, x, execution: try resolve(execution))
    }

    /// `x[i] ← maximum(x[i], y[i])`, NaN where either is NaN (torch: `_foreach_maximum_`).
    public static func maximum(_ x: [Tensor], _ y: [Tensor], execution: Execution? = nil) throws {
        try ForeachLists.check("Foreach.maximum", x, [y])
        ForeachLauncher().elementwise(.maximum, x, y, execution: try resolve(execution))
    }

    /// `x[i] ← min(max(x[i], min), max)`; NaN elements stay NaN (torch: `_foreach_clamp_min_`
    /// then `_foreach_clamp_max_`). Throws when a bound is NaN or `min > max`.
    public static func clamp(_ x: [Tensor], min lower: Double, max upper: Double, execution: Execution? = nil) throws {
        guard !lower.isNaN, !upper.isNaN, lower <= upper else {
            throw OptimError(.invalidArgument, "Foreach.clamp: the bounds must be numbers with min <= max, got min \(lower) and max \(upper)")
        }
        try ForeachLists.check("Foreach.clamp", x, [])
        ForeachLauncher().elementwise(.clamp, x, a: lower, b: upper, execution: try resolve(execution))
    }

    /// `x[i] ← y[i]`, bit for bit (torch: `_foreach_copy_(x, y)`).
    public static func copy(_ x: [Tensor], from y: [Tensor], execution: Execution? = nil) throws {
        try ForeachLists.check("Foreach.copy", x, [y])
        ForeachLauncher().elementwise(.copy, x, y, execution: try resolve(execution))
    }

    /// `x[i] ← 0` (positive zero) for every element (torch: `_foreach_zero_`).
    public static func zero(_ x: [Tensor], execution: Execution? = nil) throws {
        try ForeachLists.check("Foreach.zero", x, [])
        ForeachLauncher().elementwise(.zero, x, execution: try resolve(execution))
    }

    // MARK: Reductions

    /// `Σᵢ Σⱼ x[i]ⱼ · y[i]ⱼ`, over the whole lists, accumulated in `Double`; 0 for empty lists.
    public static func dot(_ x: [Tensor], _ y: [Tensor], execution: Execution? = nil) throws -> Double {
        try ForeachLists.check("Foreach.dot", x, [y], writes: false)
        return ForeachLauncher().reduce(.dot, x, y, execution: try resolve(execution)).combined
    }

    /// `Σⱼ x[i]ⱼ · y[i]ⱼ` for each i, accumulated in `Double`.
    public static func dots(_ x: [Tensor], _ y: [Tensor], execution: Execution? = nil) throws -> [Double] {
        try ForeachLists.check("Foreach.dots", x, [y], writes: false)
        return ForeachLauncher().reduce(.dot, x, y, execution: try resolve(execution)).perTensor
    }

    /// The p-norm of the whole list viewed as one vector: `(Σᵢ Σⱼ |x[i]ⱼ|ᵖ)^(1/p)` for p > 0,
    /// `maxᵢⱼ |x[i]ⱼ|` for p = ∞ (NaN if an element is NaN); 0 for an empty list. Sums of
    /// powers are accumulated in `Double` (p = 1 and p = 2 without calling `pow`). Throws
    /// unless p > 0 (torch's `clip_grad_norm_` semantics: the total norm equals the norm of
    /// the per-tensor norms).
    public static func norm(_ x: [Tensor], p: Double = 2, execution: Execution? = nil) throws -> Double {
        let reduction = try ForeachLists.normReduction("Foreach.norm", p: p)
        try ForeachLists.check("Foreach.norm", x, [], writes: false)
        let partials = ForeachLauncher().reduce(reduction, x, p: p, execution: try resolve(execution))
        return ForeachLists.root(partials.combined, p: p)
    }

    /// The p-norm of each tensor, as ``norm(_:p:execution:)`` (torch: `_foreach_norm(x, p)`).
    public static func norms(_ x: [Tensor], p: Double = 2, execution: Execution? = nil) throws -> [Double] {
        let reduction = try ForeachLists.normReduction("Foreach.norms", p: p)
        try ForeachLists.check("Foreach.norms", x, [], writes: false)
        let partials = ForeachLauncher().reduce(reduction, x, p: p, execution: try resolve(execution))
        return partials.perTensor.map { ForeachLists.root($0, p: p) }
    }

    static func resolve(_ execution: Execution?) throws -> Execution {
        try execution ?? Execution.fromEnvironment()
    }
}

/// List checks and norm helpers shared by ``Foreach``, gradient clipping and LBFGS.
enum ForeachLists {
    /// Throws unless every list in `inputs` matches `x` index by index (count, shape, dtype)
    /// and, when `x` is written, no tensor of `x` appears twice or at another index of an input.
    static func check(_ operation: String, _ x: [Tensor], _ inputs: [[Tensor]], writes: Bool = true) throws {
        for (position, list) in inputs.enumerated() {
            guard list.count == x.count else {
                throw OptimError(.invalidArgument, """
                    \(operation): list \(position + 2) has \(list.count) tensor\(list.count == 1 ? "" : "s") \
                    but the first list has \(x.count); the lists must have the same length
                    """)
            }
            for index in x.indices where list[index].shape != x[index].shape || list[index].dtype != x[index].dtype {
                throw OptimError(.invalidArgument, """
                    \(operation): tensor \(index) of list \(position + 2) is a \(list[index].dtype) tensor of \
                    shape \(list[index].shape), but tensor \(index) of the first list is a \(x[index].dtype) tensor of \
                    shape \(x[index].shape); tensors at the same index must have the same shape and dtype
                    """)
            }
        }
        guard writes, x.count > 1 || !inputs.isEmpty else { return }
        var written: [ObjectIdentifier: Int] = [:]
        written.reserveCapacity(x.count)
        for (index, tensor) in x.enumerated() {
            if let earlier = written.updateValue(index, forKey: ObjectIdentifier(tensor)) {
                throw OptimError(.invalidArgument, """
                    \(operation): the first list holds the same tensor at indices \(earlier) and \(index); \
                    indices are updated in parallel, so a tensor may be written only once
                    """)
            }
        }
        for (position, list) in inputs.enumerated() {
            for (index, tensor) in list.enumerated() {
                if let writtenAt = written[ObjectIdentifier(tensor)], writtenAt != index {
                    throw OptimError(.invalidArgument, """
                        \(operation): tensor \(index) of list \(position + 2) is tensor \(writtenAt) of the first \
                        list, which the operation writes; indices are updated in parallel, so an input may be a \
                        written tensor only at its own index
                        """)
                }
            }
        }
    }

    static func normReduction(_ operation: String, p: Double) throws -> ForeachReduction {
        guard p > 0 else {
            throw OptimError(.invalidArgument, "\(operation): the norm's order p must be > 0 (or infinity), got \(p)")
        }
        switch p {
        case .infinity: return .maxAbs
        case 1: return .sumAbs
        case 2: return .sumSquares
        default: return .sumPowAbs
        }
    }

    /// The norm from the combined reduction of `normReduction(p)`.
    static func root(_ value: Double, p: Double) -> Double {
        switch p {
        case .infinity, 1: value
        case 2: value.squareRoot()
        default: pow(value, 1 / p)
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
