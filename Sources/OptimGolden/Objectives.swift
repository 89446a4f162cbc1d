internal import COptimKernels
import Optim

/// The objectives of closure-driven golden cases, by the name in the case's `objective` field:
/// a function of all parameters' elements concatenated in parameter order (row-major), giving
/// the loss and its gradient.
public enum GoldenObjective {
    public typealias Function = ([Double]) -> (loss: Double, gradient: [Double])

    /// The objective called `name`, computed in the precision torch computes it for parameters
    /// of `dtype`: `Double` for float64, `Float` otherwise (exact for float32; for float16 and
    /// bfloat16, torch rounds every operation to the half type and this does not), or nil when
    /// this replayer does not know it.
    public static func named(_ name: String, dtype: DType = .float64) -> Function? {
        switch name {
        case "rosenbrock":
            if dtype == .float64 { return rosenbrock }
            return { x in
                let (loss, gradient) = rosenbrock(computingIn: x.map { Float($0) })
                return (Double(loss), gradient.map { Double($0) })
            }
        default:
            return nil
        }
    }

    /// The n-dimensional Rosenbrock function, f(x) = Σᵢ₌₀ⁿ⁻² (1 − xᵢ)² + 100 (xᵢ₊₁ − xᵢ²)².
    ///
    /// Rounded as the reference files' generator rounds it, so that a replay follows torch's
    /// trajectory to the last bit where it can (LBFGS on Rosenbrock amplifies a difference in
    /// the last bit by orders of magnitude): the loss is Σ (1 − xᵢ)² + Σ 100 (xᵢ₊₁ − xᵢ²)², each
    /// sum as torch sums a vector (see `torchSum`), and each gradient element adds the
    /// contributions in the order autograd delivers them: through xᵢ² of the second sum, through
    /// xᵢ₊₁ of the second sum, then through the first sum.
    public static func rosenbrock(_ x: [Double]) -> (loss: Double, gradient: [Double]) {
        rosenbrock(computingIn: x)
    }

    /// The Rosenbrock function computed in `T` throughout, as torch computes it for tensors of
    /// that precision.
    public static func rosenbrock<T: BinaryFloatingPoint>(computingIn x: [T]) -> (loss: T, gradient: [T]) {
        let n = x.count
        guard n >= 2 else { return (0, [T](repeating: 0, count: n)) }
        var first = [T](repeating: 0, count: n - 1), second = first
        var throughFirst = [T](repeating: 0, count: n), throughSquare = throughFirst, throughNext = throughFirst
        for i in 0..<(n - 1) {
            let a = 1 - x[i]
            let b = x[i + 1] - x[i] * x[i]
            first[i] = a * a
            second[i] = 100 * (b * b)
            let slope = 100 * (2 * b)
            throughFirst[i] = -(2 * a)
            throughSquare[i] = -(slope * (2 * x[i]))
            throughNext[i + 1] = slope
        }
        let gradient = (0..<n).map { (throughSquare[$0] + throughNext[$0]) + throughFirst[$0] }
        return (torchSum(first) + torchSum(second), gradient)
    }

    /// A sum of non-negative terms in the order of torch's CPU sum (the kernel LBFGS uses for
    /// its first step length): float32 summed in float, float64 in double.
    static func torchSum<T: BinaryFloatingPoint>(_ values: [T]) -> T {
        values.withUnsafeBufferPointer { buffer in
            switch T.self {
            case is Double.Type:
                T(optim_torch_order_sum_abs(buffer.baseAddress, Int64(buffer.count), OPTIM_DTYPE_FLOAT64))
            case is Float.Type:
                T(optim_torch_order_sum_abs(buffer.baseAddress, Int64(buffer.count), OPTIM_DTYPE_FLOAT32))
            default:
                T(optim_torch_order_sum_abs(values.map { Double($0) }, Int64(buffer.count), OPTIM_DTYPE_FLOAT64))
            }
        }
    }
}
