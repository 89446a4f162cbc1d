import Foundation
import Optim

/// A torch option dictionary, read key by key; keys left over are options this library does
/// not know, which `finish()` reports.
struct TorchOptions {
    private var remaining: [String: Any]

    /// torch options that choose an implementation or autograd behaviour, not the math: every
    /// path here computes the same bits, so they are accepted and ignored.
    static let implementationChoices: Set<String> = ["foreach", "fused", "capturable", "differentiable"]

    init(_ options: [String: Any]) { remaining = options }

    mutating func double(_ key: String) throws -> Double? {
        guard let value = remaining.removeValue(forKey: key) else { return nil }
        if value is NSNull { return nil }
        guard let number = value as? NSNumber else {
            throw GoldenError("option \(key) is not a number: \(value)")
        }
        return number.doubleValue
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
        return (list[0].doubleValue, list[1].doubleValue)
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

    func finish() throws {
        let unknown = remaining.keys.filter { !TorchOptions.implementationChoices.contains($0) }.sorted()
        guard unknown.isEmpty else {
            throw GoldenError("unsupported option\(unknown.count == 1 ? "" : "s"): \(unknown.joined(separator: ", "))")
        }
    }
}

extension SGD.Options {
    init(torch options: [String: Any], defaults: SGD.Options = .init()) throws {
        var o = TorchOptions(options)
        self = defaults
        if let v = try o.double("lr") { lr = v }
        if let v = try o.double("momentum") { momentum = v }
        if let v = try o.double("dampening") { dampening = v }
        if let v = try o.double("weight_decay") { weightDecay = v }
        if let v = try o.bool("nesterov") { nesterov = v }
        if let v = try o.bool("maximize") { maximize = v }
        try o.finish()
    }
}

extension Adam.Options {
    init(torch options: [String: Any], defaults: Adam.Options = .init()) throws {
        var o = TorchOptions(options)
        self = defaults
        if let v = try o.double("lr") { lr = v }
        if let v = try o.pair("betas") { betas = v }
        if let v = try o.double("eps") { eps = v }
        if let v = try o.double("weight_decay") { weightDecay = v }
        if let v = try o.bool("amsgrad") { amsgrad = v }
        if let v = try o.bool("maximize") { maximize = v }
        if let v = try o.bool("decoupled_weight_decay") { decoupledWeightDecay = v }
        try o.finish()
    }
}

/// An optimizer under replay, whatever its type.
protocol ReplayedOptimizer: AnyObject {
    func step() throws
    func step(_ closure: () throws -> Double) throws -> Double
    func state(for parameter: Tensor) -> ParameterState?
}

extension SGD: ReplayedOptimizer {}
extension LBFGS: ReplayedOptimizer {}
extension Adam: ReplayedOptimizer {}
extension AdamW: ReplayedOptimizer {}

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
        return try SGD(groups: specs { try SGD.Options(torch: $0) }, execution: execution,
                       implementation: implementation)
    case "Adam":
        return try Adam(groups: specs { try Adam.Options(torch: $0) }, execution: execution,
                        implementation: implementation)
    case "AdamW":
        return try AdamW(groups: specs { try Adam.Options(torch: $0, defaults: AdamW.defaultOptions) },
                         execution: execution, implementation: implementation)
    case "LBFGS":
        return try LBFGS(groups: specs { try LBFGS.Options(torch: $0) }, execution: execution,
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
