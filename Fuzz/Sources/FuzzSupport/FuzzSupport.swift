import Optim

/// What the fuzz targets and the seed generator share: how an optimizer of the catalog is built
/// over small float32 parameters, and how one step is taken.
public enum FuzzSupport {
    /// One thread, no dispatch: deterministic runs.
    public static let execution: Execution = {
        do { return try Execution(threads: 1, backend: .serial) } catch { fatalError("\(error)") }
    }()

    /// Parameter shapes to build optimizers over; every shape has two dimensions for optimizers
    /// that need matrices.
    public static let shapeSets: [[[Int]]] = [[[3, 4], [5], [2, 3]], [[4, 2], [1, 6]], [[7], [2, 2, 2], [1]]]
    static let matrixShapeSets: [[[Int]]] = [[[3, 4], [5, 1], [2, 3]], [[4, 2], [1, 6]], [[7, 1], [2, 4], [1, 1]]]

    /// The parameter shapes of set `index` for `entry`.
    public static func shapes(_ entry: OptimizerEntry, set index: Int) -> [[Int]] {
        (entry.needsMatrices ? matrixShapeSets : shapeSets)[index % shapeSets.count]
    }

    /// Float32 parameters of `shapes` with deterministic values.
    public static func parameters(_ shapes: [[Int]]) throws -> [Tensor] {
        try shapes.enumerated().map { number, shape in
            let count = shape.reduce(1, *)
            return try Tensor((0..<count).map { Double(($0 * 7 + number * 3) % 11) / 11 - 0.4 }, shape: shape)
        }
    }

    /// Sets gradients on `parameters` (row-sparse ones, every row, for an optimizer that
    /// requires them), varied by `round`.
    public static func setGradients(_ entry: OptimizerEntry, _ parameters: [Tensor], round: Int) throws {
        for (number, parameter) in parameters.enumerated() {
            let values = (0..<parameter.count).map { Double(($0 * 5 + number + round * 3) % 13) / 13 - 0.5 }
            let gradient = try Tensor(values, shape: parameter.shape, dtype: parameter.dtype)
            if entry.sparseGradients == .required {
                let rows = parameter.shape.first ?? 1
                parameter.sparseGrad = try RowSparseGradient(indices: Array(0..<rows), values: gradient)
            } else {
                parameter.grad = gradient
            }
        }
    }

    /// One step of `optimizer`: through a closure that sets the gradients for an optimizer
    /// driven by one (LBFGS), after setting them otherwise.
    public static func step(_ entry: OptimizerEntry, _ optimizer: any Optimizer, _ parameters: [Tensor],
                            round: Int) throws {
        if entry.engine == .closure {
            var calls = 0
            try optimizer.step {
                calls += 1
                // A loaded max_iter or max_eval may ask for billions of evaluations.
                guard calls <= 64 else { throw Stop() }
                try setGradients(entry, parameters, round: round + calls)
                return parameters.map { $0.toArray().map { $0 * $0 }.reduce(0, +) }.reduce(0, +)
            }
        } else {
            try setGradients(entry, parameters, round: round)
            try optimizer.step()
        }
    }

    /// Thrown from a closure to end a step that evaluates it too often.
    public struct Stop: Error {}

    /// The Swift type name a checkpoint saved by `entry`'s optimizer names, by entry index.
    public static let typeNames: [String] = OptimizerCatalog.entries.map { entry in
        guard let parameters = try? parameters(shapes(entry, set: 0)),
              let optimizer = try? entry.make(parameters, execution: execution) else { return "" }
        return String(describing: type(of: optimizer))
    }
}
