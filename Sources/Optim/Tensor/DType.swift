/// The element type a tensor stores. Optimizer math runs in `Float` for `float32`, `float16`
/// and `bfloat16` storage (half types are widened on load and rounded to nearest-even on
/// store, as torch's fused CPU kernels do) and in `Double` for `float64`.
public enum DType: String, CaseIterable, Sendable, CustomStringConvertible {
    /// IEEE binary32, 4 bytes.
    case float32
    /// IEEE binary64, 8 bytes; its math runs in `Double`.
    case float64
    /// IEEE binary16, 2 bytes: 11 significant bits, largest finite value 65,504.
    case float16
    /// bfloat16, 2 bytes: float32's exponent range with 8 significant bits.
    case bfloat16

    /// Bytes per element.
    public var byteWidth: Int {
        switch self {
        case .float32: 4
        case .float64: 8
        case .float16, .bfloat16: 2
        }
    }

    /// torch's name without `torch.`: `float32`, `float64`, `float16`, `bfloat16`.
    public var description: String { rawValue }

    /// `value` as an element of this dtype holds it: rounded to nearest, ties to even.
    public func rounded(_ value: Double) -> Double { Kernels.rounded(value, to: self) }
}

/// Where a tensor's storage lives. Only CPU memory is supported.
public enum Device: String, Sendable, CustomStringConvertible {
    /// CPU memory.
    case cpu

    /// `cpu`.
    public var description: String { rawValue }
}
