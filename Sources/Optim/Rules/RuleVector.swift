public import COptimLanes

// The one file that imports the lane shims. They are reached from inlinable code, so that a
// rule written in another package compiles its lane operations into its own loops.

/// The vector type a rule written in Swift computes on: 16 `Float` lanes (float32, float16 and
/// bfloat16 storage, whose math runs in `Float`) or 8 `Double` lanes (float64 storage).
///
/// Arithmetic is `SIMD`'s own (`+`, `-`, `*`, `/`, with vectors or scalars). The operations
/// below complete it with forms that stay on the vector units; use them rather than
/// `squareRoot()`, `pointwiseMax` or `replacing(with:where:)`, which this toolchain compiles
/// into one library call or one branch per lane. Each is exact (correctly rounded), so a rule
/// gives the same bits on every vector width, thread count and machine.
public protocol RuleVector: SIMD where Scalar: BinaryFloatingPoint {
    /// √x, lane by lane, correctly rounded.
    static func sqrt(_ x: Self) -> Self
    /// The larger of each pair of lanes; NaN where either is NaN (torch.maximum).
    static func maximum(_ a: Self, _ b: Self) -> Self
    /// The smaller of each pair of lanes; NaN where either is NaN (torch.minimum).
    static func minimum(_ a: Self, _ b: Self) -> Self
    /// |x|, lane by lane.
    static func abs(_ x: Self) -> Self
    /// 1, −1 or 0 (also for NaN), lane by lane (torch.sign).
    static func sign(_ x: Self) -> Self
    /// `ifPositive` where `condition > 0`, `otherwise` elsewhere (NaN is not positive).
    static func select(_ condition: Self, ifPositive: Self, otherwise: Self) -> Self
}

extension SIMD16: RuleVector where Scalar == Float {
    /// √x, lane by lane, correctly rounded.
    @inlinable @inline(__always) public static func sqrt(_ x: Self) -> Self { optim_lanes_sqrt_f32x16(x) }
    /// The larger of each pair of lanes; NaN where either is NaN.
    @inlinable @inline(__always) public static func maximum(_ a: Self, _ b: Self) -> Self {
        optim_lanes_maximum_f32x16(a, b)
    }
    /// The smaller of each pair of lanes; NaN where either is NaN.
    @inlinable @inline(__always) public static func minimum(_ a: Self, _ b: Self) -> Self {
        optim_lanes_minimum_f32x16(a, b)
    }
    /// |x|, lane by lane.
    @inlinable @inline(__always) public static func abs(_ x: Self) -> Self { optim_lanes_abs_f32x16(x) }
    /// 1, −1 or 0 (also for NaN), lane by lane.
    @inlinable @inline(__always) public static func sign(_ x: Self) -> Self { optim_lanes_sign_f32x16(x) }
    /// `ifPositive` where `condition > 0`, `otherwise` elsewhere.
    @inlinable @inline(__always)
    public static func select(_ condition: Self, ifPositive: Self, otherwise: Self) -> Self {
        optim_lanes_select_positive_f32x16(condition, ifPositive, otherwise)
    }
}

extension SIMD8: RuleVector where Scalar == Double {
    /// √x, lane by lane, correctly rounded.
    @inlinable @inline(__always) public static func sqrt(_ x: Self) -> Self { optim_lanes_sqrt_f64x8(x) }
    /// The larger of each pair of lanes; NaN where either is NaN.
    @inlinable @inline(__always) public static func maximum(_ a: Self, _ b: Self) -> Self {
        optim_lanes_maximum_f64x8(a, b)
    }
    /// The smaller of each pair of lanes; NaN where either is NaN.
    @inlinable @inline(__always) public static func minimum(_ a: Self, _ b: Self) -> Self {
        optim_lanes_minimum_f64x8(a, b)
    }
    /// |x|, lane by lane.
    @inlinable @inline(__always) public static func abs(_ x: Self) -> Self { optim_lanes_abs_f64x8(x) }
    /// 1, −1 or 0 (also for NaN), lane by lane.
    @inlinable @inline(__always) public static func sign(_ x: Self) -> Self { optim_lanes_sign_f64x8(x) }
    /// `ifPositive` where `condition > 0`, `otherwise` elsewhere.
    @inlinable @inline(__always)
    public static func select(_ condition: Self, ifPositive: Self, otherwise: Self) -> Self {
        optim_lanes_select_positive_f64x8(condition, ifPositive, otherwise)
    }
}

extension RuleVector {
    /// A vector of `value` rounded to the lanes' type (a per-step scalar, computed in `Double`).
    @inlinable @inline(__always) public init(_ value: Double) { self.init(repeating: Scalar(value)) }

    /// torch.lerp with a scalar weight: `self + weight · (end − self)` for |weight| < 0.5,
    /// otherwise `end − (end − self) · (1 − weight)`, which is exact at weight 1.
    @inlinable @inline(__always) public func lerp(to end: Self, weight: Double) -> Self {
        let w = Scalar(weight)
        if w < 0.5 && w > -0.5 { return self + w * (end - self) }
        return end - (end - self) * (1 - w)
    }
}
