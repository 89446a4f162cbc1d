/// An optimizer's state and options as torch's `optimizer.state_dict()` holds them, for
/// checkpoints: `state` maps a parameter's index (counted over the groups in order, as torch
/// counts) to its state by torch's key names, and each of `paramGroups` holds a group's options
/// by torch's names plus `params`, the indices of its parameters.
///
/// It is `Codable`: encoded as JSON it reads like torch's, with tensors as
/// `{"tensor": {"dtype", "shape", "data"}}` (the layout of the project's `state_dicts.json`
/// references; Docs/checkpoints.md shows the conversion to and from a torch checkpoint).
/// Non-finite numbers need the encoder's non-conforming float strategy.
public struct OptimizerStateDict: Equatable, Sendable, Codable {
    /// Per parameter index (counted over the groups in order), its state by torch's names.
    public var state: [Int: [String: StateValue]]
    /// Per group, its options by torch's names and `params`, its parameters' indices (torch:
    /// `param_groups`).
    public var paramGroups: [[String: StateValue]]

    /// A state dict of these entries (one converted from torch's, say).
    public init(state: [Int: [String: StateValue]], paramGroups: [[String: StateValue]]) {
        self.state = state
        self.paramGroups = paramGroups
    }

    enum CodingKeys: String, CodingKey {
        case state
        case paramGroups = "param_groups"
    }
}

/// A value of a state dict: what torch keeps there, a number, a flag, a name, nothing, a list
/// or a tensor.
public enum StateValue: Equatable, Sendable, Codable, CustomStringConvertible {
    /// Python's `None`.
    case null
    /// A flag.
    case bool(Bool)
    /// A whole number (a step count, `params` indices).
    case integer(Int)
    /// A number.
    case number(Double)
    /// A name (`line_search_fn`, `adjust_lr_fn`).
    case string(String)
    /// A list (`betas`, `params`, LBFGS's history).
    indirect case list([StateValue])
    /// A nested dictionary (the states of a composite scheduler's schedulers).
    indirect case dictionary([String: StateValue])
    /// A tensor, in its own dtype.
    case tensor(TensorValue)

    /// The value as a number, for an integer, a number or a tensor of one element.
    public var doubleValue: Double? {
        switch self {
        case .integer(let value): Double(value)
        case .number(let value): value
        case .tensor(let value) where value.count == 1: value.data[0]
        default: nil
        }
    }

    /// The value as Python prints it: `None`, `True`, `0.9`, `'name'`, `[...]`.
    public var description: String {
        switch self {
        case .null: "None"
        case .bool(let value): value ? "True" : "False"
        case .integer(let value): "\(value)"
        case .number(let value): "\(value)"
        case .string(let value): "'\(value)'"
        case .list(let values): "[\(values.map(\.description).joined(separator: ", "))]"
        case .dictionary(let values): "{\(values.keys.sorted().map { "'\($0)': \(values[$0]!)" }.joined(separator: ", "))}"
        case .tensor(let value): "tensor(\(value.dtype), shape: \(value.shape))"
        }
    }

    private enum TensorKey: String, CodingKey { case tensor }

    private struct AnyKey: CodingKey {
        let stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    /// Reads a JSON value: null, a flag, an integer, a number, a string, a list, an object
    /// `{"tensor": ...}` or another object.
    public init(from decoder: any Decoder) throws {
        if let keyed = try? decoder.container(keyedBy: AnyKey.self) {
            if keyed.allKeys.map(\.stringValue) == ["tensor"],
               let tensor = try? keyed.decode(TensorValue.self, forKey: AnyKey(stringValue: "tensor")) {
                self = .tensor(tensor)
                return
            }
            var values: [String: StateValue] = [:]
            for key in keyed.allKeys { values[key.stringValue] = try keyed.decode(StateValue.self, forKey: key) }
            self = .dictionary(values)
            return
        }
        if var list = try? decoder.unkeyedContainer() {
            var values: [StateValue] = []
            while !list.isAtEnd { values.append(try list.decode(StateValue.self)) }
            self = .list(values)
            return
        }
        let single = try decoder.singleValueContainer()
        if single.decodeNil() {
            self = .null
        } else if let value = try? single.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? single.decode(Int.self) {
            self = .integer(value)
        } else if let value = try? single.decode(Double.self) {
            self = .number(value)
        } else {
            self = .string(try single.decode(String.self))
        }
    }

    /// Writes the value as ``init(from:)`` reads it.
    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .tensor(let value):
            var keyed = encoder.container(keyedBy: TensorKey.self)
            try keyed.encode(value, forKey: .tensor)
        case .list(let values):
            var list = encoder.unkeyedContainer()
            for value in values { try list.encode(value) }
        case .dictionary(let values):
            var keyed = encoder.container(keyedBy: AnyKey.self)
            for (key, value) in values { try keyed.encode(value, forKey: AnyKey(stringValue: key)) }
        case .null:
            var single = encoder.singleValueContainer()
            try single.encodeNil()
        case .bool(let value): try encodeSingle(value, to: encoder)
        case .integer(let value): try encodeSingle(value, to: encoder)
        case .number(let value): try encodeSingle(value, to: encoder)
        case .string(let value): try encodeSingle(value, to: encoder)
        }
    }

    private func encodeSingle<Value: Encodable>(_ value: Value, to encoder: any Encoder) throws {
        var single = encoder.singleValueContainer()
        try single.encode(value)
    }
}

/// A tensor's dtype, shape and row-major values, held in that dtype (a float32 state of 124 M
/// elements takes 496 MB here, as in the optimizer, not twice that as `Double`s).
///
/// A value is a snapshot: the tensors of a state dict are copies, which later steps do not
/// change. It reads as `Double`s through ``data`` (every dtype converts to `Double` exactly)
/// and travels through Codable as `{"dtype", "shape", "data"}`.
public struct TensorValue: Sendable, Codable, Equatable {
    /// The element type the values are held in.
    public let dtype: DType
    /// The extent of each dimension; empty for a 0-dimensional tensor.
    public let shape: [Int]
    /// The elements, in `dtype`. Never written once the value exists, except for a value that
    /// borrows an optimizer's live state, which exists only while a checkpoint save holds the
    /// optimizer's lock.
    let storage: Tensor

    /// The values as a tensor of `dtype` holds them: each rounded to `dtype` (to nearest, ties
    /// to even), so that what is saved in `dtype` and read back is equal to this.
    public init(dtype: DType, shape: [Int], data: [Double]) {
        self.dtype = dtype
        self.shape = shape
        storage = Tensor(uncheckedCopying: data, dtype: dtype)
    }

    /// A copy of `tensor`'s values, in its dtype (the process stops, as the standard library's
    /// arrays do, if the memory cannot be allocated).
    public init(_ tensor: Tensor) {
        let copy: Tensor
        do { copy = try tensor.clone() } catch { fatalError("cannot copy \(tensor): \(error)") }
        self.init(shape: tensor.shape, storage: copy)
    }

    /// `tensor`'s values without a copy, for a save that holds the owner's lock while it writes.
    init(borrowing tensor: Tensor) {
        self.init(shape: tensor.shape, storage: tensor)
    }

    /// `storage`'s elements under `shape`, without a copy: `storage` must not change afterwards.
    init(shape: [Int], storage: Tensor) {
        dtype = storage.dtype
        self.shape = shape
        self.storage = storage
    }

    /// A 0-dimensional tensor, as torch keeps step counts and per-tensor scalars.
    public static func scalar(_ value: Double, dtype: DType = .float32) -> TensorValue {
        TensorValue(dtype: dtype, shape: [], data: [value])
    }

    /// How many elements the value holds (the product of `shape` for a well-formed value).
    public var count: Int { storage.count }

    /// The elements, row-major, converted exactly to `Double` (a new array of `count` elements).
    public var data: [Double] { storage.toArray() }

    /// The element bytes, little-endian, in `dtype`.
    public func withUnsafeBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try body(UnsafeRawBufferPointer(start: storage.baseAddress, count: storage.byteCount))
    }

    /// A tensor of `shape` (which must hold `count` elements) and `dtype` with these values,
    /// converted to `dtype` when it is another one (rounded to nearest, ties to even).
    func tensor(shape: [Int], dtype: DType) throws -> Tensor {
        guard try Tensor.elementCount(shape) == count else {
            throw OptimError(.invalidArgument, "a tensor of \(count) elements cannot take the shape \(shape)")
        }
        // Not zeroed first: the copy writes every element.
        let result = Tensor(shape: shape, dtype: dtype,
                            storage: try TensorStorage(allocatingBytes: try Tensor.byteCount(shape, dtype)))
        try result.copy(convertingFrom: storage)
        return result
    }

    enum CodingKeys: String, CodingKey { case dtype, shape, data }

    /// Reads `{"dtype", "shape", "data"}`, rounding the data to `dtype`.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(dtype: try container.decode(DType.self, forKey: .dtype),
                  shape: try container.decode([Int].self, forKey: .shape),
                  data: try container.decode([Double].self, forKey: .data))
    }

    /// Writes `{"dtype", "shape", "data"}`, the data as numbers.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(dtype, forKey: .dtype)
        try container.encode(shape, forKey: .shape)
        try container.encode(data, forKey: .data)
    }

    /// Equal bit for bit once stored in `dtype`: NaN equals NaN, 0 differs from -0.
    public static func == (a: TensorValue, b: TensorValue) -> Bool {
        guard a.dtype == b.dtype, a.shape == b.shape, a.count == b.count else { return false }
        if a.withUnsafeBytes({ x in b.withUnsafeBytes { y in x.elementsEqual(y) } }) { return true }
        return zip(a.data, b.data).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) }
    }
}

extension DType: Codable {}

/// Literals for option dictionaries: `["lr": 0.1, "betas": [0.9, 0.99], "amsgrad": true]`.
extension StateValue: ExpressibleByFloatLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByStringLiteral, ExpressibleByArrayLiteral, ExpressibleByNilLiteral {
    /// ``number(_:)``.
    public init(floatLiteral value: Double) { self = .number(value) }
    /// ``integer(_:)``.
    public init(integerLiteral value: Int) { self = .integer(value) }
    /// ``bool(_:)``.
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    /// ``string(_:)``.
    public init(stringLiteral value: String) { self = .string(value) }
    /// ``list(_:)``.
    public init(arrayLiteral elements: StateValue...) { self = .list(elements) }
    /// ``null``.
    public init(nilLiteral: ()) { self = .null }
}
