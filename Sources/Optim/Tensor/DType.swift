/// The element type a tensor stores. Optimizer math runs in `Float` for `float32`, `float16`
/// and `bfloat16` storage (half types are widened on load and rounded to nearest-even on
/// store, as torch's fused CPU kernels do) and in `Double` for `float64`.
public enum DType: String, CaseIterable, Sendable, CustomStringConvertible {
    case float32
    case float64
    case float16
    case bfloat16

    /// Bytes per element.
    public var byteWidth: Int {
        switch self {
        case .float32: 4
        case .float64: 8
        case .float16, .bfloat16: 2
        }
    }

    public var description: String { rawValue }

    /// `value` as an element of this dtype holds it: rounded to nearest, ties to even.
    public func rounded(_ value: Double) -> Double { Kernels.rounded(value, to: self) }
}

/// Where a tensor's storage lives. Only CPU memory is supported.
public enum Device: String, Sendable, CustomStringConvertible {
    case cpu

    public var description: String { rawValue }
}
