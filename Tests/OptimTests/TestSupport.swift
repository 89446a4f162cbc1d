import Foundation
import Optim

/// The folder of reference files copied from PyTorch 2.15 runs (see Docs/golden.md).
let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

/// A small deterministic generator for test data (SplitMix64).
struct TestRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
    /// Uniform in [-1, 1).
    mutating func signed() -> Double { Double(Int64(bitPattern: next()) >> 11) * 0x1p-52 }
    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
    mutating func values(_ count: Int, scale: Double = 1) -> [Double] { (0..<count).map { _ in signed() * scale } }
}

/// The bytes of a tensor, for bit-for-bit comparison.
func bytes(of tensor: Tensor) -> [UInt8] {
    Array(UnsafeRawBufferPointer(start: tensor.baseAddress, count: tensor.byteCount))
}

/// Every parameter's bytes and every state tensor's bytes, in a fixed order.
func snapshot(_ parameters: [Tensor], state: (Tensor) -> ParameterState?) -> [[UInt8]] {
    var result: [[UInt8]] = []
    for parameter in parameters {
        result.append(bytes(of: parameter))
        if let s = state(parameter) {
            result.append(withUnsafeBytes(of: s.step) { Array($0) })
            for name in s.tensors.keys.sorted() { result.append(bytes(of: s.tensors[name]!)) }
            for name in s.values.keys.sorted() { result.append(withUnsafeBytes(of: s.values[name]!) { Array($0) }) }
        }
    }
    return result
}

/// How many random cases a property test draws: `count`, or fewer under a sanitizer, which runs
/// each case ten to twenty times slower (`OPTIM_PROPERTY_CHECKS`, set by the sanitizer runs
/// of .ci/run).
func propertyChecks(_ count: Int) -> Int {
    guard let text = ProcessInfo.processInfo.environment["OPTIM_PROPERTY_CHECKS"], let limit = Int(text), limit > 0
    else { return count }
    return min(count, limit)
}
