import Optim
import Testing

/// Gradient clipping with torch.nn.utils' semantics.
@Suite struct ClippingTests {
    static let execution = try! Execution(threads: 2, serialThreshold: 0, chunkElements: 64)

    func parameters(_ grads: [[Double]?], dtype: DType = .float64) throws -> [Tensor] {
        try grads.map { grad in
            let parameter = try Tensor.zeros([grad?.count ?? 3], dtype: dtype)
            parameter.grad = try grad.map { try Tensor($0, dtype: dtype) }
            return parameter
        }
    }

    @Test func aNormAboveTheBoundScalesEveryGradientByTheSameFactor() throws {
        let params = try parameters([[3, 4], nil, [0, 12]])
        let total = try clipGradNorm(params, maxNorm: 6.5, execution: Self.execution)
        #expect(total == 13)
        let factor = 6.5 / (13 + 1e-6)
        #expect(params[0].grad!.toArray() == [3 * factor, 4 * factor])
        #expect(params[1].grad == nil)
        #expect(params[2].grad!.toArray() == [0, 12 * factor])
    }

    @Test func aNormWithinTheBoundLeavesTheGradientsAsTheyWere() throws {
        let params = try parameters([[0.1, -0.2, 0.3]], dtype: .float32)
        let before = bytes(of: params[0].grad!)
        let total = try clipGradNorm(params, maxNorm: 1, execution: Self.execution)
        #expect(abs(total - (0.14 as Double).squareRoot()) < 1e-7)
        #expect(bytes(of: params[0].grad!) == before)
    }

    @Test func otherNormTypes() throws {
        let params = try parameters([[3, -4], [1]])
        #expect(try clipGradNorm(params, maxNorm: 100, normType: .infinity, execution: Self.execution) == 4)
        #expect(try clipGradNorm(params, maxNorm: 100, normType: 1, execution: Self.execution) == 8)
        let p3 = try clipGradNorm(params, maxNorm: 1, normType: 3, execution: Self.execution)
        #expect(abs(p3 - pow(27 + 64 + 1, 1.0 / 3)) < 1e-12)
        let coefficient = 1 / (p3 + 1e-6)
        #expect(params[0].grad!.toArray() == [3 * coefficient, -4 * coefficient])
        let inf = try parameters([[2, -8, 1]])
        #expect(try clipGradNorm(inf, maxNorm: 2, normType: .infinity, execution: Self.execution) == 8)
        #expect(inf[0].grad!.toArray() == [2, -8, 1].map { $0 * (2 / (8 + 1e-6)) })
    }

    @Test func noGradientsGiveANormOfZero() throws {
        let params = try parameters([nil, nil])
        #expect(try clipGradNorm(params, maxNorm: 1, execution: Self.execution) == 0)
        #expect(try clipGradNorm([], maxNorm: 1, execution: Self.execution) == 0)
    }

    @Test func aNonFiniteNormThrowsOnRequestAndChangesNothing() throws {
        for bad in [Double.nan, .infinity] {
            let params = try parameters([[1, 2], [bad, 3]])
            let before = params.map { bytes(of: $0.grad!) }
            #expect(throws: OptimError.self) {
                try clipGradNorm(params, maxNorm: 1, errorIfNonfinite: true, execution: Self.execution)
            }
            #expect(params.map { bytes(of: $0.grad!) } == before)
        }
    }

    @Test func aNonFiniteNormOtherwiseScalesByItAsTorchDoes() throws {
        let infinite = try parameters([[1, 2], [.infinity, 3]])
        #expect(try clipGradNorm(infinite, maxNorm: 1, execution: Self.execution) == .infinity)
        // The coefficient is 1 / ∞ = 0: finite gradients become zero, ∞ · 0 is NaN.
        #expect(infinite[0].grad!.toArray() == [0, 0])
        #expect(infinite[1].grad!.toArray()[0].isNaN && infinite[1].grad!.toArray()[1] == 0)
        let notANumber = try parameters([[1, .nan]])
        #expect(try clipGradNorm(notANumber, maxNorm: 1, execution: Self.execution).isNaN)
        #expect(notANumber[0].grad!.toArray().allSatisfy { $0.isNaN })
    }

    @Test func badArgumentsThrowAndChangeNothing() throws {
        let params = try parameters([[5, 5]])
        for (maxNorm, normType) in [(-1.0, 2.0), (.nan, 2), (1, 0), (1, -2), (1, .nan)] {
            #expect(throws: OptimError.self) {
                try clipGradNorm(params, maxNorm: maxNorm, normType: normType, execution: Self.execution)
            }
        }
        let shared = try Tensor([1, 2])
        let a = try Tensor.zeros([2]), b = try Tensor.zeros([2])
        a.grad = shared
        b.grad = shared
        #expect(throws: OptimError.self) { try clipGradNorm([a, b], maxNorm: 1, execution: Self.execution) }
        #expect(params[0].grad!.toArray() == [5, 5])
        #expect(shared.toArray() == [1, 2])
    }

    @Test(arguments: DType.allCases)
    func clipGradValueClampsEveryElement(dtype: DType) throws {
        let params = try parameters([[-3, -0.5, 0, 0.25, 7, .nan], nil, [2]], dtype: dtype)
        try clipGradValue(params, clipValue: 1, execution: Self.execution)
        let clipped = params[0].grad!.toArray()
        #expect(Array(clipped.prefix(5)) == [-1, -0.5, 0, 0.25, 1])
        #expect(clipped[5].isNaN)
        #expect(params[2].grad!.toArray() == [1])
        #expect(throws: OptimError.self) { try clipGradValue(params, clipValue: -1, execution: Self.execution) }
        #expect(throws: OptimError.self) { try clipGradValue(params, clipValue: .nan, execution: Self.execution) }
    }
}

#if canImport(Glibc)
import Glibc
#endif
