import Optim
import Testing

@Suite struct TensorTests {
    @Test func arraysRoundTripInEveryDtype() throws {
        let values: [Double] = [0, -0.0, 1, -2.5, 0.125, 3.0517578125e-05, 1024]
        for dtype in DType.allCases {
            let tensor = try Tensor(values, shape: [7], dtype: dtype)
            #expect(tensor.toArray() == values, "\(dtype)")
            #expect(tensor.byteCount == 7 * dtype.byteWidth)
        }
    }

    @Test func shapesAndCounts() throws {
        let tensor = try Tensor.zeros([2, 3, 4], dtype: .float64)
        #expect(tensor.count == 24)
        #expect(tensor.shape == [2, 3, 4])
        #expect(tensor.device == .cpu)
        #expect(tensor.toArray() == Array(repeating: 0, count: 24))
        let scalar = try Tensor([5], shape: [])
        #expect(scalar.count == 1)
        #expect(try Tensor.zeros([0, 3]).count == 0)
    }

    @Test func allocatedStorageIsCacheLineAligned() throws {
        for count in [1, 3, 17, 1000, 2_000_000] {
            let tensor = try Tensor.zeros([count], dtype: .float16)
            #expect(Int(bitPattern: tensor.baseAddress) % 64 == 0)
        }
    }

    @Test func badShapesAndCountsAreRefused() {
        #expect(throws: OptimError.self) { try Tensor([1, 2, 3], shape: [2, 2]) }
        #expect(throws: OptimError.self) { try Tensor.zeros([-1]) }
        #expect(throws: OptimError.self) { try Tensor.zeros([Int.max, 4]) }
        #expect(throws: OptimError.self) { try Tensor([1, 2]).copy(from: Tensor([1, 2], dtype: .float64)) }
    }

    /// Half types round to nearest, ties to even, with subnormals, overflow and NaN handled.
    @Test func halfConversionsRoundToNearestEven() throws {
        let cases: [(Double, Double)] = [
            (65504, 65504), (65519.99, 65504), (65520, .infinity), (-70000, -.infinity),
            (1 + 0x1p-11, 1), (1 + 3 * 0x1p-11, 1 + 0x1p-9),  // ties go to the even neighbour
            (0x1p-24, 0x1p-24), (0x1p-25, 0), (0x1.8p-25, 0x1p-24), (0x1p-14 - 0x1p-25, 0x1p-14),
        ]
        for (input, expected) in cases {
            let value = try Tensor([input], dtype: .float16).toArray()[0]
            #expect(value == expected, "float16(\(input)) = \(value), want \(expected)")
        }
        let bfloatCases: [(Double, Double)] = [
            (1 + 0x1p-8, 1), (1 + 3 * 0x1p-8, 1 + 0x1p-6), (3.0e38, Double(Float(bitPattern: 0x7f62_0000))),
            (3.4e38, .infinity),
        ]
        for (input, expected) in bfloatCases {
            let value = try Tensor([input], dtype: .bfloat16).toArray()[0]
            #expect(Float(value) == Float(expected), "bfloat16(\(input)) = \(value), want \(expected)")
        }
        #expect(try Tensor([Double.nan], dtype: .float16).toArray()[0].isNaN)
        #expect(try Tensor([Double.nan], dtype: .bfloat16).toArray()[0].isNaN)
    }

    /// A wrapped buffer is used in place: an optimizer step writes the caller's memory.
    @Test func wrappedMemoryIsUpdatedInPlaceAndReleased() throws {
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: 4)
        buffer.initialize(from: [1, 2, 3, 4], count: 4)
        final class Flag: @unchecked Sendable { var released = false }
        let flag = Flag()
        do {
            let parameter = try Tensor(wrapping: buffer, shape: [2, 2], dtype: .float32) { flag.released = true }
            parameter.grad = try Tensor([1, 1, 1, 1], shape: [2, 2])
            try SGD([parameter], options: .init(lr: 0.5)).step()
        }
        #expect(Array(UnsafeBufferPointer(start: buffer, count: 4)) == [0.5, 1.5, 2.5, 3.5])
        #expect(flag.released)
        buffer.deallocate()
    }

    @Test func misalignedWrappedMemoryIsRefused() throws {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: 16, alignment: 8)
        defer { raw.deallocate() }
        #expect(throws: OptimError.self) { try Tensor(wrapping: raw + 2, shape: [2], dtype: .float32) }
    }

    @Test func bitHashSeesEveryBit() throws {
        let a = try Tensor([1, 2, 3])
        let b = try Tensor([1, 2, 3])
        #expect(a.bitHash() == b.bitHash())
        b.baseAddress.storeBytes(of: Float(3).bitPattern ^ 1, toByteOffset: 8, as: UInt32.self)
        #expect(a.bitHash() != b.bitHash())
    }
}
