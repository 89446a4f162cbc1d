/// The objectives of closure-driven golden cases, by the name in the case's `objective` field:
/// a function of all parameters' elements concatenated in parameter order (row-major), giving
/// the loss and its gradient, computed in `Double`.
public enum GoldenObjective {
    public typealias Function = ([Double]) -> (loss: Double, gradient: [Double])

    /// The objective called `name`, or nil when this replayer does not know it.
    public static func named(_ name: String) -> Function? {
        switch name {
        case "rosenbrock": rosenbrock
        default: nil
        }
    }

    /// The n-dimensional Rosenbrock function, f(x) = Σᵢ₌₀ⁿ⁻² (1 − xᵢ)² + 100 (xᵢ₊₁ − xᵢ²)².
    ///
    /// Rounded as the reference files' generator rounds it, so that a replay follows torch's
    /// trajectory to the last bit where it can (LBFGS on Rosenbrock amplifies a difference in
    /// the last bit by orders of magnitude): the loss is Σ (1 − xᵢ)² + Σ 100 (xᵢ₊₁ − xᵢ²)², each
    /// sum as torch sums a short vector (see `torchSum`), and each gradient element adds the
    /// contributions in the order autograd delivers them: through xᵢ² of the second sum, through
    /// xᵢ₊₁ of the second sum, then through the first sum.
    public static func rosenbrock(_ x: [Double]) -> (loss: Double, gradient: [Double]) {
        let n = x.count
        guard n >= 2 else { return (0, [Double](repeating: 0, count: n)) }
        var first = [Double](repeating: 0, count: n - 1), second = first
        var throughFirst = [Double](repeating: 0, count: n), throughSquare = throughFirst, throughNext = throughFirst
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

    /// A sum in the order torch's CPU sum takes for these short vectors: groups of four
    /// summed pairwise, ((v₀ + v₁) + (v₂ + v₃)), the groups one after another, then the rest
    /// one by one.
    static func torchSum(_ values: [Double]) -> Double {
        var total = 0.0
        var index = 0
        if values.count >= 4 {
            total = (values[0] + values[1]) + (values[2] + values[3])
            index = 4
            while index + 4 <= values.count {
                total += (values[index] + values[index + 1]) + (values[index + 2] + values[index + 3])
                index += 4
            }
        }
        while index < values.count {
            total += values[index]
            index += 1
        }
        return total
    }
}
