import Foundation
import Optim

/// A torch option dictionary, read key by key (see `finish()` for the keys left over).
struct TorchOptions {
    private var remaining: [String: Any]

    init(_ options: [String: Any]) { remaining = options }

    mutating func double(_ key: String) throws -> Double? {
        guard let value = remaining.removeValue(forKey: key) else { return nil }
        if value is NSNull { return nil }
        guard let number = value as? NSNumber else {
            throw GoldenError("option \(key) is not a number: \(value)")
        }
        return exactDouble(number)
    }

    mutating func bool(_ key: String) throws -> Bool? {
        guard let value = remaining.removeValue(forKey: key) else { return nil }
        if value is NSNull { return nil }
        guard let number = value as? NSNumber else { throw GoldenError("option \(key) is not a boolean: \(value)") }
        return number.boolValue
    }

    mutating func pair(_ key: String) throws -> (Double, Double)? {
        guard let value = remaining.removeValue(forKey: key) else { return nil }
        guard let list = value as? [NSNumber], list.count == 2 else {
            throw GoldenError("option \(key) is not a pair of numbers: \(value)")
        }
        return (exactDouble(list[0]), exactDouble(list[1]))
    }

    mutating func int(_ key: String) throws -> Int? {
        guard let value = try double(key) else { return nil }
        guard let integer = Int(exactly: value) else { throw GoldenError("option \(key) is not an integer: \(value)") }
        return integer
    }

    mutating func string(_ key: String) throws -> String? {
        guard let value = remaining.removeValue(forKey: key) else { return nil }
        if value is NSNull { return nil }
        guard let text = value as? String else { throw GoldenError("option \(key) is not a string: \(value)") }
        return text
    }

    /// Ends the reading. Keys left over are accepted and ignored: a torch parameter group may
    /// carry keys its optimizer does not define (a group of Rprop with a `weight_decay`), which
    /// torch keeps and never reads, and every option torch defines for an optimizer is read by
    /// its initializer here.
    func finish() throws {}
}

extension StateValue {
    /// A JSON value as `JSONSerialization` reads it: numbers (and booleans, which it gives as
    /// numbers) become numbers, Python's non-finite tokens too.
    init(json value: Any) throws {
        switch value {
        case is NSNull: self = .null
        case let number as NSNumber: self = .number(exactDouble(number))
        case let text as String:
            switch text {
            case "NaN": self = .number(.nan)
            case "Infinity": self = .number(.infinity)
            case "-Infinity": self = .number(-.infinity)
            default: self = .string(text)
            }
        case let list as [Any]: self = .list(try list.map(StateValue.init(json:)))
        default: throw GoldenError("unexpected option value \(value)")
        }
    }
}

/// Options from a golden case's torch option dictionary: `base` with every option it names.
func torchOptions<Options: TorchNamedOptions>(_ options: [String: Any], base: Options) throws -> Options {
    try base.applying(torchValues: options.mapValues(StateValue.init(json:)))
}

/// An optimizer under replay, whatever its type.
protocol ReplayedOptimizer: AnyObject {
    func step() throws
    func step(_ closure: () throws -> Double) throws -> Double
    func state(for parameter: Tensor) -> ParameterState?
}

extension ElementwiseOptimizer: ReplayedOptimizer {}
extension LBFGS: ReplayedOptimizer {}

/// Builds the optimizer torch calls `name` over parameter groups with torch-named options, or
/// returns nil when this library does not implement it.
func makeOptimizer(_ name: String, groups: [([Tensor], [String: Any])], execution: Execution,
                   implementation: Implementation) throws -> ReplayedOptimizer? {
    func specs<Options>(_ parse: @escaping ([String: Any]) throws -> Options) throws -> [ParameterGroupSpec<Options>] {
        try groups.map { parameters, options in
            let parsed = try parse(options)
            return ParameterGroupSpec(parameters) { $0 = parsed }
        }
    }
    switch name {
    case "SGD":
        return try SGD(groups: specs { try torchOptions($0, base: SGD.Options()) }, execution: execution,
                       implementation: implementation)
    case "Adam":
        return try Adam(groups: specs { try torchOptions($0, base: Adam.Options()) }, execution: execution,
                        implementation: implementation)
    case "AdamW":
        return try AdamW(groups: specs { try torchOptions($0, base: AdamW.defaultOptions) }, execution: execution,
                         implementation: implementation)
    case "RMSprop":
        return try RMSprop(groups: specs { try torchOptions($0, base: RMSprop.Options()) }, execution: execution,
                           implementation: implementation)
    case "Adagrad":
        return try Adagrad(groups: specs { try torchOptions($0, base: Adagrad.Options()) }, execution: execution,
                           implementation: implementation)
    case "Adadelta":
        return try Adadelta(groups: specs { try torchOptions($0, base: Adadelta.Options()) }, execution: execution,
                            implementation: implementation)
    case "Adamax":
        return try Adamax(groups: specs { try torchOptions($0, base: Adamax.Options()) }, execution: execution,
                          implementation: implementation)
    case "ASGD":
        return try ASGD(groups: specs { try torchOptions($0, base: ASGD.Options()) }, execution: execution,
                        implementation: implementation)
    case "NAdam":
        return try NAdam(groups: specs { try torchOptions($0, base: NAdam.Options()) }, execution: execution,
                         implementation: implementation)
    case "RAdam":
        return try RAdam(groups: specs { try torchOptions($0, base: RAdam.Options()) }, execution: execution,
                         implementation: implementation)
    case "Rprop":
        return try Rprop(groups: specs { try torchOptions($0, base: Rprop.Options()) }, execution: execution,
                         implementation: implementation)
    case "SparseAdam":
        return try SparseAdam(groups: specs { try torchOptions($0, base: SparseAdam.Options()) }, execution: execution,
                              implementation: implementation)
    case "LBFGS":
        return try LBFGS(groups: specs { try LBFGS.Options(torch: $0) }, execution: execution,
                         implementation: implementation)
    case "Adafactor":
        return try Adafactor(groups: specs { try torchOptions($0, base: Adafactor.Options()) }, execution: execution,
                             implementation: implementation)
    case "Muon":
        return try Muon(groups: specs { try torchOptions($0, base: Muon.Options()) }, execution: execution,
                        implementation: implementation)
    default:
        return nil
    }
}

extension LBFGS.Options {
    init(torch options: [String: Any], defaults: LBFGS.Options = .init()) throws {
        var o = TorchOptions(options)
        self = defaults
        if let v = try o.double("lr") { lr = v }
        if let v = try o.int("max_iter") { maxIter = v }
        if let v = try o.int("max_eval") { maxEval = v }
        if let v = try o.double("tolerance_grad") { toleranceGrad = v }
        if let v = try o.double("tolerance_change") { toleranceChange = v }
        if let v = try o.int("history_size") { historySize = v }
        let lineSearchName = try o.string("line_search_fn")
        if let v = try o.bool("maximize") { maximize = v }
        try o.finish()
        switch lineSearchName {
        case nil: lineSearch = .none
        case let name?:
            guard let known = LBFGS.LineSearch(rawValue: name), known != .none else {
                throw OptimError(.invalidOption, """
                    line_search_fn '\(name)' is not supported: LBFGS supports only 'strong_wolfe' or None \
                    (torch refuses other values at the first step, this library when the optimizer is built)
                    """)
            }
            lineSearch = known
        }
    }
}

extension TorchOptions {
    /// Whether torch's constructor accepts `options` but its first `step` refuses them: this
    /// library refuses those when the optimizer is built.
    static func refusedAtFirstStep(optimizer: String, options: [String: Any]) -> Bool {
        guard optimizer == "LBFGS", let name = options["line_search_fn"] as? String else { return false }
        return name != LBFGS.LineSearch.strongWolfe.rawValue
    }
}
