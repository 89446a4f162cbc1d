import Foundation
import Optim

/// A learning-rate schedule of a reference file's "schedulers" list (see Docs/golden.md): SGD
/// with one group at `base_lr` (and `momentum` = `base_momentum` where given); each epoch steps
/// the optimizer, then the scheduler (with `metrics[epoch]` for ReduceLROnPlateau); `lrs[e]`
/// (and `momentums[e]`) are the group's values after epoch e.
public struct GoldenSchedule: @unchecked Sendable {
    public let id: String
    public let scheduler: String
    public let options: [String: Any]
    public let baseLR: Double
    public let baseMomentum: Double?
    public let epochs: Int
    public let lrs: [Double]
    public let momentums: [Double]?
    public let metrics: [Double]?

    /// The cases of a file's "schedulers" list; empty when it has none.
    public static func load(data: Data) throws -> [GoldenSchedule] {
        try load(root: JSONSerialization.jsonObject(with: quotingNonFiniteNumbers(data)))
    }

    /// The cases of a parsed file's "schedulers" list.
    static func load(root: Any) throws -> [GoldenSchedule] {
        guard let list = (root as? [String: Any])?["schedulers"] as? [[String: Any]] else { return [] }
        return try list.enumerated().map { index, raw in
            func number(_ key: String) throws -> Double {
                guard let value = raw[key] as? NSNumber else { throw GoldenError("schedule \(index) has no number \(key)") }
                return exactDouble(value)
            }
            let lrs = try numbers(raw["lrs"], "lrs")
            return GoldenSchedule(
                id: raw["id"] as? String ?? "schedule \(index)", scheduler: raw["scheduler"] as? String ?? "?",
                options: raw["options"] as? [String: Any] ?? [:], baseLR: try number("base_lr"),
                baseMomentum: (raw["base_momentum"] as? NSNumber).map(exactDouble),
                epochs: (raw["epochs"] as? NSNumber)?.intValue ?? lrs.count, lrs: lrs,
                momentums: try raw["momentums"].map { try numbers($0, "momentums") },
                metrics: try raw["metrics"].map { try numbers($0, "metrics") })
        }
    }

    /// Builds the schedule and compares every epoch's rate (and momentum): values match when
    /// they differ by at most 1e-12 + 1e-9 · |reference|.
    public func replay() -> ReplayOutcome {
        do {
            let sgd = try SGD([Tensor([0.0])], options: .init(lr: baseLR, momentum: baseMomentum ?? 0),
                              execution: Execution(threads: 1, backend: .serial))
            let stepper: (Int) throws -> Void
            if scheduler == "ReduceLROnPlateau" {
                guard let metrics, metrics.count >= epochs else { return .fail("ReduceLROnPlateau needs a metric per epoch") }
                let plateau = try makePlateau(sgd, options)
                stepper = { try plateau.step(metric: metrics[$0]) }
            } else {
                guard let built = try makeScheduler(sgd, name: scheduler, options: options) else {
                    return .skip(unsupportedReason(scheduler, options))
                }
                stepper = { _ in try built.step() }
            }
            var maxError = 0.0
            for epoch in 0..<min(epochs, lrs.count) {
                try sgd.step()
                try stepper(epoch)
                let group = sgd.paramGroups[0].options
                if let failure = compare(group.lr, lrs[epoch], &maxError) { return .fail("epoch=\(epoch) lr \(failure)") }
                if let momentums, epoch < momentums.count,
                   let failure = compare(group.momentum, momentums[epoch], &maxError) {
                    return .fail("epoch=\(epoch) momentum \(failure)")
                }
            }
            return .pass(maxError: maxError)
        } catch let error as OptimError {
            return .fail("the scheduler refused: \(error.message)")
        } catch let error as GoldenError {
            return .fail(error.message)
        } catch {
            return .fail("\(error)")
        }
    }

    private func compare(_ got: Double, _ want: Double, _ maxError: inout Double) -> String? {
        let error = abs(got - want)
        guard error <= 1e-12 + 1e-9 * abs(want) else { return "got=\(got) want=\(want)" }
        maxError = max(maxError, error)
        return nil
    }
}

private func unsupportedReason(_ name: String, _ options: [String: Any]) -> String {
    if ["LambdaLR", "MultiplicativeLR"].contains(name) {
        return "\(name) needs a function, which this file's options cannot hold"
    }
    if options["scale_fn"] != nil { return "a custom scale_fn cannot be read from a file" }
    return "scheduler \(name) is not known to this replayer"
}

/// Reads torch-named scheduler options, key by key; keys it does not know make the build fail
/// with their names.
private struct SchedulerOptions {
    var remaining: [String: Any]

    mutating func take(_ key: String) -> Any? {
        guard let value = remaining.removeValue(forKey: key), !(value is NSNull) else { return nil }
        return value
    }
    mutating func double(_ key: String) throws -> Double? {
        guard let value = take(key) else { return nil }
        guard let number = value as? NSNumber else { throw GoldenError("option \(key) is not a number: \(value)") }
        return exactDouble(number)
    }
    mutating func int(_ key: String) throws -> Int? {
        guard let value = try double(key) else { return nil }
        guard let integer = Int(exactly: value) else { throw GoldenError("option \(key) is not an integer: \(value)") }
        return integer
    }
    mutating func bool(_ key: String) throws -> Bool? {
        guard let value = take(key) else { return nil }
        guard let number = value as? NSNumber else { throw GoldenError("option \(key) is not a boolean: \(value)") }
        return number.boolValue
    }
    mutating func string(_ key: String) throws -> String? {
        guard let value = take(key) else { return nil }
        guard let text = value as? String else { throw GoldenError("option \(key) is not a string: \(value)") }
        return text
    }
    /// A number or a list of numbers (one per group).
    mutating func doubles(_ key: String) throws -> [Double]? {
        guard let value = take(key) else { return nil }
        if let number = value as? NSNumber { return [exactDouble(number)] }
        return try numbers(value, key)
    }
    func finish() throws {
        guard remaining.isEmpty else {
            throw GoldenError("unsupported scheduler option\(remaining.count == 1 ? "" : "s"): \(remaining.keys.sorted().joined(separator: ", "))")
        }
    }
}

private func makePlateau(_ sgd: SGD, _ options: [String: Any]) throws -> ReduceLROnPlateau {
    var o = SchedulerOptions(remaining: options)
    let mode = try o.string("mode").map { name -> ReduceLROnPlateau.Mode in
        guard let mode = ReduceLROnPlateau.Mode(rawValue: name) else { throw GoldenError("unknown mode \(name)") }
        return mode
    }
    let thresholdMode = try o.string("threshold_mode").map { name -> ReduceLROnPlateau.ThresholdMode in
        guard let mode = ReduceLROnPlateau.ThresholdMode(rawValue: name) else { throw GoldenError("unknown threshold_mode \(name)") }
        return mode
    }
    let plateau = try ReduceLROnPlateau(
        sgd, mode: mode ?? .min, factor: o.double("factor") ?? 0.1, patience: o.int("patience") ?? 10,
        threshold: o.double("threshold") ?? 1e-4, thresholdMode: thresholdMode ?? .rel,
        cooldown: o.int("cooldown") ?? 0, minLR: o.doubles("min_lr") ?? [0], eps: o.double("eps") ?? 1e-8)
    try o.finish()
    return plateau
}

/// The scheduler torch calls `name` over `sgd`, or nil when a file cannot describe it (a
/// function) or this replayer does not know it. SequentialLR and ChainedScheduler take their
/// schedulers as a list of `{"scheduler", "options"}` under "schedulers".
private func makeScheduler(_ sgd: SGD, name: String, options: [String: Any]) throws -> LRScheduler? {
    var o = SchedulerOptions(remaining: options)
    let scheduler: LRScheduler
    switch name {
    case "StepLR":
        guard let stepSize = try o.int("step_size") else { throw GoldenError("StepLR needs step_size") }
        scheduler = try StepLR(sgd, stepSize: stepSize, gamma: o.double("gamma") ?? 0.1)
    case "MultiStepLR":
        let milestones = try (o.take("milestones").map { try numbers($0, "milestones") } ?? []).map { Int($0) }
        scheduler = try MultiStepLR(sgd, milestones: milestones, gamma: o.double("gamma") ?? 0.1)
    case "ConstantLR":
        scheduler = try ConstantLR(sgd, factor: o.double("factor") ?? 1.0 / 3, totalIters: o.int("total_iters") ?? 5)
    case "LinearLR":
        scheduler = try LinearLR(sgd, startFactor: o.double("start_factor") ?? 1.0 / 3,
                                 endFactor: o.double("end_factor") ?? 1, totalIters: o.int("total_iters") ?? 5)
    case "ExponentialLR":
        guard let gamma = try o.double("gamma") else { throw GoldenError("ExponentialLR needs gamma") }
        scheduler = try ExponentialLR(sgd, gamma: gamma)
    case "PolynomialLR":
        scheduler = try PolynomialLR(sgd, totalIters: o.int("total_iters") ?? 5, power: o.double("power") ?? 1)
    case "CosineAnnealingLR":
        guard let tMax = try o.int("T_max") else { throw GoldenError("CosineAnnealingLR needs T_max") }
        scheduler = try CosineAnnealingLR(sgd, tMax: tMax, etaMin: o.double("eta_min") ?? 0)
    case "CosineAnnealingWarmRestarts":
        guard let t0 = try o.int("T_0") else { throw GoldenError("CosineAnnealingWarmRestarts needs T_0") }
        scheduler = try CosineAnnealingWarmRestarts(sgd, t0: t0, tMult: o.int("T_mult") ?? 1, etaMin: o.double("eta_min") ?? 0)
    case "CyclicLR":
        if options["scale_fn"] != nil { return nil }
        guard let base = try o.doubles("base_lr"), let top = try o.doubles("max_lr") else {
            throw GoldenError("CyclicLR needs base_lr and max_lr")
        }
        let mode = try o.string("mode").map { name -> CyclicLR.Mode in
            guard let mode = CyclicLR.Mode(rawValue: name) else { throw GoldenError("unknown CyclicLR mode \(name)") }
            return mode
        }
        _ = try o.string("scale_mode")  // chosen by the mode when there is no custom scale
        scheduler = try CyclicLR(sgd, baseLR: base, maxLR: top, stepSizeUp: o.int("step_size_up") ?? 2000,
                                 stepSizeDown: o.int("step_size_down"), mode: mode ?? .triangular,
                                 gamma: o.double("gamma") ?? 1, cycleMomentum: o.bool("cycle_momentum") ?? true,
                                 baseMomentum: o.doubles("base_momentum") ?? [0.8],
                                 maxMomentum: o.doubles("max_momentum") ?? [0.9])
    case "OneCycleLR":
        guard let top = try o.doubles("max_lr") else { throw GoldenError("OneCycleLR needs max_lr") }
        let annealing = try o.string("anneal_strategy").map { name -> OneCycleLR.Annealing in
            guard let value = OneCycleLR.Annealing(rawValue: name) else { throw GoldenError("unknown anneal_strategy \(name)") }
            return value
        }
        scheduler = try OneCycleLR(sgd, maxLR: top, totalSteps: o.int("total_steps"), epochs: o.int("epochs"),
                                   stepsPerEpoch: o.int("steps_per_epoch"), pctStart: o.double("pct_start") ?? 0.3,
                                   annealing: annealing ?? .cos, cycleMomentum: o.bool("cycle_momentum") ?? true,
                                   baseMomentum: o.doubles("base_momentum") ?? [0.85],
                                   maxMomentum: o.doubles("max_momentum") ?? [0.95],
                                   divFactor: o.double("div_factor") ?? 25, finalDivFactor: o.double("final_div_factor") ?? 1e4,
                                   threePhase: o.bool("three_phase") ?? false)
    case "SWALR":
        guard let swaLR = try o.doubles("swa_lr") else { throw GoldenError("SWALR needs swa_lr") }
        let annealing = try o.string("anneal_strategy").map { name -> SWALR.Annealing in
            guard let value = SWALR.Annealing(rawValue: name) else {
                throw OptimError(.invalidOption, "anneal_strategy must be one of 'cos' or 'linear', instead got \(name)")
            }
            return value
        }
        scheduler = try SWALR(sgd, swaLR: swaLR, annealEpochs: o.int("anneal_epochs") ?? 10, annealing: annealing ?? .cos)
    case "SequentialLR", "ChainedScheduler":
        guard let list = o.take("schedulers") as? [[String: Any]] else {
            throw GoldenError("\(name) needs a list of schedulers")
        }
        var children: [LRScheduler] = []
        for item in list {
            guard let childName = item["scheduler"] as? String,
                  let child = try makeScheduler(sgd, name: childName, options: item["options"] as? [String: Any] ?? [:]) else {
                return nil
            }
            children.append(child)
        }
        if name == "SequentialLR" {
            let milestones = try (o.take("milestones").map { try numbers($0, "milestones") } ?? []).map { Int($0) }
            scheduler = try SequentialLR(sgd, schedulers: children, milestones: milestones)
        } else {
            scheduler = try ChainedScheduler(children)
        }
    default:
        return nil
    }
    try o.finish()
    return scheduler
}
