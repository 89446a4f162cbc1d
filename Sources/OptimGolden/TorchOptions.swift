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

    /// Ends the reading. Keys left over are accepted and ignored: a torch parameter group may
    /// carry keys its optimizer does not define (a group of Rprop with a `weight_decay`), which
    /// torch keeps and never reads, and every option torch defines for an optimizer is read by
    /// its initializer here.
    func finish() throws {}
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

extension RMSprop.Options {
    init(torch options: [String: Any]) throws {
        var o = TorchOptions(options)
        self.init()
        if let v = try o.double("lr") { lr = v }
        if let v = try o.double("alpha") { alpha = v }
        if let v = try o.double("eps") { eps = v }
        if let v = try o.double("weight_decay") { weightDecay = v }
        if let v = try o.double("momentum") { momentum = v }
        if let v = try o.bool("centered") { centered = v }
        if let v = try o.bool("maximize") { maximize = v }
        try o.finish()
    }
}

extension Adagrad.Options {
    init(torch options: [String: Any]) throws {
        var o = TorchOptions(options)
        self.init()
        if let v = try o.double("lr") { lr = v }
        if let v = try o.double("lr_decay") { lrDecay = v }
        if let v = try o.double("weight_decay") { weightDecay = v }
        if let v = try o.double("initial_accumulator_value") { initialAccumulatorValue = v }
        if let v = try o.double("eps") { eps = v }
        if let v = try o.bool("maximize") { maximize = v }
        try o.finish()
    }
}

extension Adadelta.Options {
    init(torch options: [String: Any]) throws {
        var o = TorchOptions(options)
        self.init()
        if let v = try o.double("lr") { lr = v }
        if let v = try o.double("rho") { rho = v }
        if let v = try o.double("eps") { eps = v }
        if let v = try o.double("weight_decay") { weightDecay = v }
        if let v = try o.bool("maximize") { maximize = v }
        try o.finish()
    }
}

extension Adamax.Options {
    init(torch options: [String: Any]) throws {
        var o = TorchOptions(options)
        self.init()
        if let v = try o.double("lr") { lr = v }
        if let v = try o.pair("betas") { betas = v }
        if let v = try o.double("eps") { eps = v }
        if let v = try o.double("weight_decay") { weightDecay = v }
        if let v = try o.bool("maximize") { maximize = v }
        try o.finish()
    }
}

extension ASGD.Options {
    init(torch options: [String: Any]) throws {
        var o = TorchOptions(options)
        self.init()
        if let v = try o.double("lr") { lr = v }
        if let v = try o.double("lambd") { lambd = v }
        if let v = try o.double("alpha") { alpha = v }
        if let v = try o.double("t0") { t0 = v }
        if let v = try o.double("weight_decay") { weightDecay = v }
        if let v = try o.bool("maximize") { maximize = v }
        try o.finish()
    }
}

extension NAdam.Options {
    init(torch options: [String: Any]) throws {
        var o = TorchOptions(options)
        self.init()
        if let v = try o.double("lr") { lr = v }
        if let v = try o.pair("betas") { betas = v }
        if let v = try o.double("eps") { eps = v }
        if let v = try o.double("weight_decay") { weightDecay = v }
        if let v = try o.double("momentum_decay") { momentumDecay = v }
        if let v = try o.bool("decoupled_weight_decay") { decoupledWeightDecay = v }
        if let v = try o.bool("maximize") { maximize = v }
        try o.finish()
    }
}

extension RAdam.Options {
    init(torch options: [String: Any]) throws {
        var o = TorchOptions(options)
        self.init()
        if let v = try o.double("lr") { lr = v }
        if let v = try o.pair("betas") { betas = v }
        if let v = try o.double("eps") { eps = v }
        if let v = try o.double("weight_decay") { weightDecay = v }
        if let v = try o.bool("decoupled_weight_decay") { decoupledWeightDecay = v }
        if let v = try o.bool("maximize") { maximize = v }
        try o.finish()
    }
}

extension Rprop.Options {
    init(torch options: [String: Any]) throws {
        var o = TorchOptions(options)
        self.init()
        if let v = try o.double("lr") { lr = v }
        if let v = try o.pair("etas") { etas = v }
        if let v = try o.pair("step_sizes") { stepSizes = v }
        if let v = try o.bool("maximize") { maximize = v }
        try o.finish()
    }
}

/// An optimizer under replay, whatever its type.
protocol ReplayedOptimizer: AnyObject {
    func step() throws
    func state(for parameter: Tensor) -> ParameterState?
}

extension ElementwiseOptimizer: ReplayedOptimizer {}

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
    case "RMSprop":
        return try RMSprop(groups: specs { try RMSprop.Options(torch: $0) }, execution: execution,
                           implementation: implementation)
    case "Adagrad":
        return try Adagrad(groups: specs { try Adagrad.Options(torch: $0) }, execution: execution,
                           implementation: implementation)
    case "Adadelta":
        return try Adadelta(groups: specs { try Adadelta.Options(torch: $0) }, execution: execution,
                            implementation: implementation)
    case "Adamax":
        return try Adamax(groups: specs { try Adamax.Options(torch: $0) }, execution: execution,
                          implementation: implementation)
    case "ASGD":
        return try ASGD(groups: specs { try ASGD.Options(torch: $0) }, execution: execution,
                        implementation: implementation)
    case "NAdam":
        return try NAdam(groups: specs { try NAdam.Options(torch: $0) }, execution: execution,
                         implementation: implementation)
    case "RAdam":
        return try RAdam(groups: specs { try RAdam.Options(torch: $0) }, execution: execution,
                         implementation: implementation)
    case "Rprop":
        return try Rprop(groups: specs { try Rprop.Options(torch: $0) }, execution: execution,
                         implementation: implementation)
    default:
        return nil
    }
}
