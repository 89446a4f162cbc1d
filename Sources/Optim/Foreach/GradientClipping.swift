/// Rescales the gradients of `parameters` so that their total norm is at most `maxNorm`, as
/// `torch.nn.utils.clip_grad_norm_`, and returns the total norm before clipping.
///
/// With `g` the gradients of the parameters that have one, viewed as one vector:
///
///     total ← ‖g‖_p                          (p = normType; max |gᵢ| for p = ∞)
///     c ← min(maxNorm / (total + 1e-6), 1)
///     g ← c · g
///
/// The gradients are always multiplied, as torch does, so a gradient within the bound is
/// multiplied by 1 (which changes no value). When the total norm is NaN or infinite, `c` is
/// NaN or 0 and the gradients become NaN or zero, unless `errorIfNonfinite`, which throws and
/// changes nothing. Parameters without a gradient are skipped; with none, the total is 0.
///
/// The total norm is a ``Foreach/norm(_:p:execution:)`` of the gradients: accumulated in
/// `Double`, the same bits for every thread count, backend and tier. torch computes it in the
/// gradients' dtype, as the norm of the per-tensor norms; the two agree to rounding. `c` is
/// computed in `Double` and rounded to the math type of each gradient's dtype.
///
/// Throws, changing nothing, unless `maxNorm` ≥ 0 (torch accepts a negative bound, which flips
/// the gradients) and `normType` > 0, or when a gradient appears twice.
@discardableResult
public func clipGradNorm(_ parameters: [Tensor], maxNorm: Double, normType: Double = 2,
                         errorIfNonfinite: Bool = false, execution: Execution? = nil) throws -> Double {
    guard maxNorm >= 0 else {
        throw OptimError(.invalidArgument, "clipGradNorm: maxNorm must be >= 0, got \(maxNorm)")
    }
    let reduction = try ForeachLists.normReduction("clipGradNorm", p: normType)
    let grads = parameters.compactMap(\.grad)
    try ForeachLists.check("clipGradNorm (gradients)", grads, [])
    guard !grads.isEmpty else { return 0 }
    let execution = try Foreach.resolve(execution)
    let launcher = ForeachLauncher()
    let total = ForeachLists.root(launcher.reduce(reduction, grads, p: normType, execution: execution).combined,
                                  p: normType)
    if errorIfNonfinite && !total.isFinite {
        throw OptimError(.invalidArgument, """
            clipGradNorm: the total norm of order \(normType) of the gradients is \(total), so it cannot be \
            clipped; pass errorIfNonfinite: false to scale the gradients by the non-finite norm anyway
            """)
    }
    let coefficient = maxNorm / (total + 1e-6)
    let clamped = coefficient.isNaN ? coefficient : min(coefficient, 1)
    launcher.elementwise(.scale, grads, a: clamped, execution: execution)
    return total
}

/// Clamps every gradient element of `parameters` to [−clipValue, clipValue], as
/// `torch.nn.utils.clip_grad_value_`: `g ← min(max(g, −clipValue), clipValue)`. NaN elements
/// stay NaN; parameters without a gradient are skipped.
///
/// Throws, changing nothing, unless `clipValue` ≥ 0 (torch accepts a negative value, which
/// sets every element to it), or when a gradient appears twice.
public func clipGradValue(_ parameters: [Tensor], clipValue: Double, execution: Execution? = nil) throws {
    guard clipValue >= 0 else {
        throw OptimError(.invalidArgument, "clipGradValue: clipValue must be >= 0, got \(clipValue)")
    }
    let grads = parameters.compactMap(\.grad)
    try ForeachLists.check("clipGradValue (gradients)", grads, [])
    guard !grads.isEmpty else { return }
    ForeachLauncher().elementwise(.clamp, grads, a: -clipValue, b: clipValue,
                                  execution: try Foreach.resolve(execution))
}
