/// One option of an optimizer under torch's name, for reading and writing state dicts, with what
/// its value must satisfy. A table of fields lists the options in the order torch checks them,
/// so that the first error is torch's.
// Key paths are immutable values, safe to share between threads.
public enum OptionField<Options>: @unchecked Sendable {
    /// A number.
    case number(String, WritableKeyPath<Options, Double>, OptionRequirement<Double> = .any)
    /// A whole number (a step count, a number of iterations).
    case integer(String, WritableKeyPath<Options, Int>, OptionRequirement<Int> = .any)
    /// A flag (`amsgrad`, `maximize`).
    case flag(String, WritableKeyPath<Options, Bool>)
    /// Two numbers (torch's `betas`, `etas`, `step_sizes`).
    case pair(String, WritableKeyPath<Options, Pair>, OptionRequirement<Pair> = .any)
    /// A list of numbers of a fixed length (Adan's three betas): a list of another length is
    /// refused.
    case numbers(String, WritableKeyPath<Options, [Double]>)

    /// torch's name of the option.
    public var name: String {
        switch self {
        case .number(let name, _, _), .integer(let name, _, _), .flag(let name, _), .pair(let name, _, _),
             .numbers(let name, _): name
        }
    }

    /// Throws when the option's value in `options` does not satisfy its requirement.
    func check(_ options: Options) throws {
        switch self {
        case .number(let name, let path, let requirement): try requirement.check(options[keyPath: path], name)
        case .integer(let name, let path, let requirement): try requirement.check(options[keyPath: path], name)
        case .pair(let name, let path, let requirement): try requirement.check(options[keyPath: path], name)
        case .flag, .numbers: break
        }
    }
}

/// What an option's value must satisfy, with the error that says why when it does not (in
/// torch's words where torch has them; NaN and infinities are refused too).
public struct OptionRequirement<Value>: Sendable {
    /// Throws when `value`, the option named `name`, is out of range.
    public let check: @Sendable (_ value: Value, _ name: String) throws -> Void

    /// A requirement that `check` enforces by throwing an ``OptimError``.
    public init(_ check: @escaping @Sendable (_ value: Value, _ name: String) throws -> Void) {
        self.check = check
    }

    /// Any value.
    public static var any: Self { Self { _, _ in } }
}

extension OptionRequirement where Value == Double {
    /// Finite and ≥ 0: "Invalid `name` value".
    public static var nonNegative: Self { Self { try OptionCheck.nonNegative($0, $1) } }
    /// Finite.
    public static var finite: Self { Self { try OptionCheck.finite($0, $1) } }
    /// In [0, 1].
    public static var unitInterval: Self { Self { try OptionCheck.unitInterval($0, $1) } }
    /// Finite and ≥ 0, as torch words it for `eps`: "Invalid epsilon value".
    public static var epsilon: Self { Self { value, _ in try OptionCheck.epsilon(value) } }
}

extension OptionRequirement where Value == Int {
    /// ≥ 0.
    public static var nonNegative: Self { Self { try OptionCheck.nonNegative(Double($0), $1) } }
}

extension OptionRequirement where Value == Pair {
    /// Both in [0, 1), as torch requires of Adam's betas: "Invalid beta parameter at index i".
    public static var betas: Self {
        Self { betas, _ in
            try OptionCheck.beta(betas.first, index: 0)
            try OptionCheck.beta(betas.second, index: 1)
        }
    }

    /// Both in [0, 1], refused as "Invalid `firstName` value" or "Invalid `secondName` value".
    public static func eachInUnitInterval(_ firstName: String, _ secondName: String) -> Self {
        Self { pair, _ in
            try OptionCheck.unitInterval(pair.first, firstName)
            try OptionCheck.unitInterval(pair.second, secondName)
        }
    }
}

/// Two numbers that torch gives as a tuple (`betas`, `etas`, `step_sizes`): a value that
/// compares, so that options holding it get their equality for free.
public struct Pair: Equatable, Sendable, CustomStringConvertible {
    /// The first number (β₁ of `betas`).
    public var first: Double
    /// The second number (β₂ of `betas`).
    public var second: Double

    /// The pair `(first, second)`.
    public init(_ first: Double, _ second: Double) {
        self.first = first
        self.second = second
    }

    /// The pair as Python writes a tuple: `(0.9, 0.999)`.
    public var description: String { "(\(first), \(second))" }
}

extension Array {
    /// The options by torch's names.
    func torchValues<Options>(of options: Options) -> [String: StateValue] where Element == OptionField<Options> {
        var values: [String: StateValue] = [:]
        for field in self {
            switch field {
            case .number(let name, let path, _): values[name] = .number(options[keyPath: path])
            case .integer(let name, let path, _): values[name] = .integer(options[keyPath: path])
            case .flag(let name, let path): values[name] = .bool(options[keyPath: path])
            case .pair(let name, let path, _):
                let pair = options[keyPath: path]
                values[name] = .list([.number(pair.first), .number(pair.second)])
            case .numbers(let name, let path): values[name] = .list(options[keyPath: path].map(StateValue.number))
            }
        }
        return values
    }

    /// `base` with every option `values` names; the keys it does not name keep their values
    /// in `base`, and keys that are not options (torch's `foreach`, `params`, ...) are ignored.
    func options<Options>(from values: [String: StateValue], base: Options) throws -> Options
    where Element == OptionField<Options> {
        var options = base
        for field in self {
            guard let value = values[field.name] else { continue }
            switch field {
            case .number(let name, let path, _):
                guard let number = value.doubleValue else { throw Self.mismatch(name, value, "a number") }
                options[keyPath: path] = number
            case .integer(let name, let path, _):
                guard let number = value.doubleValue, let integer = Int(exactly: number) else {
                    throw Self.mismatch(name, value, "a whole number")
                }
                options[keyPath: path] = integer
            case .flag(let name, let path):
                switch value {
                case .bool(let flag): options[keyPath: path] = flag
                // Readers that cannot tell a JSON boolean from a number give 0 or 1.
                case .integer(0), .number(0): options[keyPath: path] = false
                case .integer(1), .number(1): options[keyPath: path] = true
                default: throw Self.mismatch(name, value, "True or False")
                }
            case .pair(let name, let path, _):
                let numbers = try Self.numbers(name, value, count: 2)
                options[keyPath: path] = Pair(numbers[0], numbers[1])
            case .numbers(let name, let path):
                options[keyPath: path] = try Self.numbers(name, value, count: options[keyPath: path].count)
            }
        }
        return options
    }

    private static func numbers(_ name: String, _ value: StateValue, count: Int) throws -> [Double] {
        guard case .list(let items) = value, items.count == count else {
            throw mismatch(name, value, "a list of \(count) numbers")
        }
        return try items.map { item in
            guard let number = item.doubleValue else { throw mismatch(name, value, "a list of \(count) numbers") }
            return number
        }
    }

    private static func mismatch(_ name: String, _ value: StateValue, _ expected: String) -> OptimError {
        OptimError(.invalidArgument, "option \(name) of the state dict is \(value); it must be \(expected)")
    }
}

/// Options that torch names: written as and read from torch's option dictionaries (a state
/// dict's `param_groups`, a configuration taken from a PyTorch script).
public protocol TorchNamedOptions: OptimizerOptions {
    /// The options by torch's names (`lr`, `betas`, `weight_decay`, ...).
    var torchValues: [String: StateValue] { get }
    /// These options with every option that `values` names set; keys that are not options of
    /// this optimizer are ignored, as torch ignores them in a parameter group. Throws when a
    /// value has the wrong type; does not validate ranges (the optimizer does).
    func applying(torchValues values: [String: StateValue]) throws -> Self
}

/// Options whose torch names come from one table of fields: the table gives the state-dict
/// mapping (``TorchNamedOptions``), so that an options struct declares its fields and nothing
/// else.
///
///     struct Options: TorchFieldOptions, DefaultOptions {
///         var lr = 1e-4, betas = Pair(0.9, 0.99), weightDecay = 0.0
///         static let torchFields: [OptionField<Self>] = [
///             .number("lr", \.lr), .pair("betas", \.betas), .number("weight_decay", \.weightDecay)]
///     }
public protocol TorchFieldOptions: TorchNamedOptions {
    /// Every option under its torch name.
    static var torchFields: [OptionField<Self>] { get }
}

extension TorchFieldOptions {
    /// The options by the field table's names.
    public var torchValues: [String: StateValue] { Self.torchFields.torchValues(of: self) }

    /// These options with every field `values` names set; other keys are ignored. Throws when a
    /// value has the wrong type.
    public func applying(torchValues values: [String: StateValue]) throws -> Self {
        try Self.torchFields.options(from: values, base: self)
    }

    /// Throws unless the learning rate is finite and ≥ 0 and every field satisfies its
    /// requirement, checked in the table's order: the validation of an optimizer whose options
    /// need nothing more.
    public func validateFields() throws {
        try OptionCheck.learningRate(lr)
        for field in Self.torchFields { try field.check(self) }
    }
}

/// Options whose `init()` gives their defaults (a struct whose stored properties all have
/// default values gets it for free).
public protocol DefaultOptions {
    /// The default options.
    init()
}
