/// A gradient that touches only some rows of its parameter, as torch's sparse COO gradient of
/// an embedding: row `indices[k]` of the parameter (its first dimension) receives row `k` of
/// `values`. Rows may repeat; repeated rows are summed, as torch's coalesced tensor sums them
/// (in the order they appear here).
///
/// Attach one with ``Tensor/sparseGrad``. Adagrad and SparseAdam accept sparse gradients; every
/// other optimizer refuses them with an error.
public struct RowSparseGradient: @unchecked Sendable {
    /// The parameter rows, in the order of `values`' rows.
    public let indices: [Int]
    /// One row per index: shape `[indices.count] + parameter.shape.dropFirst()`.
    public let values: Tensor

    /// Checks that `values` has one row per index and that no index is negative; whether they
    /// fit a parameter is checked when an optimizer steps.
    public init(indices: [Int], values: Tensor) throws {
        guard values.shape.first == indices.count else {
            throw OptimError(.invalidArgument, """
                a sparse gradient needs one row of values per index: \(indices.count) indices, values of shape \
                \(values.shape)
                """)
        }
        if let negative = indices.first(where: { $0 < 0 }) {
            throw OptimError(.invalidArgument, "a sparse gradient's row index is negative: \(negative)")
        }
        self.indices = indices
        self.values = values
    }

    /// Throws unless this gradient fits `parameter`: same dtype, rows of its shape, indices
    /// below its row count.
    func check(against parameter: Tensor, index: Int) throws {
        guard let rows = parameter.shape.first else {
            throw OptimError(.gradientMismatch, "parameter \(index) (\(parameter)) has no rows for a sparse gradient")
        }
        guard values.dtype == parameter.dtype, Array(values.shape.dropFirst()) == Array(parameter.shape.dropFirst()) else {
            throw OptimError(.gradientMismatch, """
                the sparse gradient of parameter \(index) (\(parameter)) has \(values.dtype) values of shape \
                \(values.shape); they must be \(parameter.dtype) rows of shape \(Array(parameter.shape.dropFirst()))
                """)
        }
        if let outside = indices.first(where: { $0 >= rows }) {
            throw OptimError(.gradientMismatch, """
                the sparse gradient of parameter \(index) (\(parameter)) refers to row \(outside) of \(rows)
                """)
        }
    }

    /// The distinct rows in increasing order, and for each where its rows of `values` are in
    /// `order` (a stable sort of the positions by row): rows `order[starts[u]..<starts[u + 1]]`.
    func coalescingPlan() -> (rows: [Int], order: [Int64], starts: [Int64]) {
        let order = indices.indices.sorted { indices[$0] < indices[$1] || (indices[$0] == indices[$1] && $0 < $1) }
        var rows: [Int] = []
        var starts: [Int64] = []
        for (position, k) in order.enumerated() where rows.last != indices[k] {
            rows.append(indices[k])
            starts.append(Int64(position))
        }
        starts.append(Int64(order.count))
        return (rows, order.map(Int64.init), starts)
    }
}

extension Tensor {
    /// Drops the gradient, dense or sparse (`setToNone`), or fills it with zeros (a sparse
    /// gradient keeps its rows), as torch's `zero_grad`.
    func zeroGradient(setToNone: Bool) {
        if setToNone {
            grad = nil
            sparseGrad = nil
        } else {
            grad?.zero()
            sparseGrad?.values.zero()
        }
    }
}
