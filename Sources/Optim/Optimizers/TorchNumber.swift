/// A number as torch's LBFGS holds it between its vector operations: a 0-dimensional tensor of
/// the parameters' dtype, rounded to that dtype by every operation, or a Python float (a
/// `Double`). torch mixes them by its own rules, which decide the bits of the step length and
/// of the line search's tests:
///
/// - a float meeting a tensor (arithmetic or comparison) is rounded to the tensor's dtype first;
/// - a float divided by a tensor is the tensor's reciprocal times the float: two roundings;
/// - Python's `min` and `max` keep whichever operand they return, tensor or float.
///
/// With float64 parameters only the division differs from `Double` arithmetic; with float32
/// parameters every tensor result is a float.
struct TorchNumber: ExpressibleByFloatLiteral, ExpressibleByIntegerLiteral {
    let value: Double
    /// The dtype of the tensor holding the number; nil for a Python float.
    let tensorType: DType?

    private init(value: Double, tensorType: DType?) {
        self.value = value
        self.tensorType = tensorType
    }

    init(floatLiteral value: Double) { self.init(value: value, tensorType: nil) }
    init(integerLiteral value: Int) { self.init(value: Double(value), tensorType: nil) }

    /// A Python float.
    static func float(_ value: Double) -> TorchNumber { TorchNumber(value: value, tensorType: nil) }

    /// A 0-dimensional tensor of `dtype` holding `value` rounded to it.
    static func tensor(_ value: Double, _ dtype: DType) -> TorchNumber {
        TorchNumber(value: dtype.rounded(value), tensorType: dtype)
    }

    /// `operation` on the operands as torch computes it: in the tensor's dtype when either is a
    /// tensor, in Double otherwise.
    private static func combine(_ a: TorchNumber, _ b: TorchNumber,
                                _ operation: (Double, Double) -> Double) -> TorchNumber {
        guard let dtype = a.tensorType ?? b.tensorType else { return .float(operation(a.value, b.value)) }
        return .tensor(operation(dtype.rounded(a.value), dtype.rounded(b.value)), dtype)
    }

    private static func compare(_ a: TorchNumber, _ b: TorchNumber, _ test: (Double, Double) -> Bool) -> Bool {
        guard let dtype = a.tensorType ?? b.tensorType else { return test(a.value, b.value) }
        return test(dtype.rounded(a.value), dtype.rounded(b.value))
    }

    static func + (a: TorchNumber, b: TorchNumber) -> TorchNumber { combine(a, b, +) }
    static func - (a: TorchNumber, b: TorchNumber) -> TorchNumber { combine(a, b, -) }
    static func * (a: TorchNumber, b: TorchNumber) -> TorchNumber { combine(a, b, *) }

    static func / (a: TorchNumber, b: TorchNumber) -> TorchNumber {
        if a.tensorType == nil, let dtype = b.tensorType {
            return .tensor(dtype.rounded(1 / b.value) * dtype.rounded(a.value), dtype)
        }
        return combine(a, b, /)
    }

    static prefix func - (a: TorchNumber) -> TorchNumber { TorchNumber(value: -a.value, tensorType: a.tensorType) }

    var magnitude: TorchNumber { TorchNumber(value: abs(value), tensorType: tensorType) }

    /// The square root, in the tensor's dtype (torch takes it of tensors only).
    func squareRoot() -> TorchNumber {
        guard let tensorType else { return .float(value.squareRoot()) }
        return .tensor(value.squareRoot(), tensorType)
    }

    static func < (a: TorchNumber, b: TorchNumber) -> Bool { compare(a, b, <) }
    static func <= (a: TorchNumber, b: TorchNumber) -> Bool { compare(a, b, <=) }
    static func > (a: TorchNumber, b: TorchNumber) -> Bool { compare(a, b, >) }
    static func >= (a: TorchNumber, b: TorchNumber) -> Bool { compare(a, b, >=) }
}

/// Python's `min(a, b)`: `a` unless `b < a`.
func pythonMin(_ a: TorchNumber, _ b: TorchNumber) -> TorchNumber { b < a ? b : a }

/// Python's `max(a, b)`: `a` unless `b > a`.
func pythonMax(_ a: TorchNumber, _ b: TorchNumber) -> TorchNumber { b > a ? b : a }
