import Foundation
import Optim

/// The outcome of replaying one golden case.
public enum ReplayOutcome: Equatable {
    /// Every compared value was within tolerance; `maxError` is the largest absolute difference.
    case pass(maxError: Double)
    case fail(String)
    /// Not built yet (an objective or schedule this replayer does not know).
    case skip(String)
    /// An input this library does not take, as the case's file says with the reason (a
    /// Tensor-valued option, named parameters, a step-time error, ...).
    case unsupported(String)
    /// A failure listed as a known difference (``KnownDifferences``), with its reason.
    case knownDifference(String)

    /// The word a report starts the outcome's line with.
    public var label: String {
        switch self {
        case .pass: "PASS"
        case .fail: "FAIL"
        case .skip: "SKIP"
        case .unsupported: "UNSUPPORTED"
        case .knownDifference: "KNOWN"
        }
    }

    /// What a report says after the case's name: the largest error, or the reason.
    public var detail: String {
        switch self {
        case .pass(let maxError): "max_err=\(String(format: "%.3g", maxError))"
        case .fail(let reason), .skip(let reason), .unsupported(let reason), .knownDifference(let reason): reason
        }
    }
}

/// Replays golden cases on this library.
public struct GoldenReplayer {
    public var execution: Execution
    public var implementation: Implementation

    public init(execution: Execution, implementation: Implementation) {
        self.execution = execution
        self.implementation = implementation
    }

    /// The options of `golden`'s groups that `entry` does not have (see
    /// ``TorchOptions/ignored(_:by:)``): the replay ignores them, as the reference did.
    public func ignoredOptions(_ golden: GoldenCase, on entry: OptimizerEntry) -> [String] {
        Array(Set(golden.groups.flatMap { TorchOptions.ignored($0.options, by: entry) })).sorted()
    }

    /// Replays `golden` on `entry`, by default the catalog's first optimizer that replays
    /// cases of its optimizer.
    public func replay(_ golden: GoldenCase, on entry: OptimizerEntry? = nil) -> ReplayOutcome {
        if golden.steps.contains(where: { $0.setParams != nil }) {
            do {
                return try replayAveraging(golden)
            } catch let error as GoldenError {
                return .fail(error.message)
            } catch {
                return .fail("\(error)")
            }
        }
        guard let entry = entry ?? OptimizerCatalog.entries(replaying: golden.optimizer).first else {
            return .skip("\(golden.optimizer) is not implemented")
        }
        if let reason = golden.unsupported { return .unsupported(reason) }
        do {
            return try replayThrowing(golden, on: entry)
        } catch let error as GoldenError {
            return .fail(error.message)
        } catch {
            return .fail("\(error)")
        }
    }

    private func replayThrowing(_ golden: GoldenCase, on entry: OptimizerEntry) throws -> ReplayOutcome {
        let closureDriven = golden.objective != nil || golden.steps.contains { $0.grads == nil }
        var objective: GoldenObjective.Function?
        if closureDriven {
            guard let name = golden.objective else {
                throw GoldenError("a step has no gradients but the case names no objective")
            }
            guard let known = GoldenObjective.named(name, dtype: golden.dtype) else {
                return .skip("objective '\(name)' is not known to this replayer")
            }
            objective = known
        }
        let parameters = try zip(golden.initialParams, golden.shapes).map { data, shape in
            try Tensor(data, shape: shape, dtype: golden.dtype)
        }
        let groups = try golden.groups.map { group -> OptimizerEntry.Group in
            (try group.params.map { index -> Tensor in
                guard parameters.indices.contains(index) else {
                    throw GoldenError("group refers to parameter \(index) of \(parameters.count)")
                }
                return parameters[index]
            }, try torchValues(group.options))
        }
        let optimizer: any Optimizer
        do {
            optimizer = try entry.make(groups: groups, execution: execution, implementation: implementation)
        } catch let error as OptimError {
            return .fail("the optimizer refused the case's options: \(error.message)")
        }
        var maxError = 0.0
        for (stepIndex, step) in golden.steps.enumerated() {
            guard step.params.count == parameters.count else {
                throw GoldenError("step \(stepIndex) has \(step.params.count) parameters for \(parameters.count) parameters")
            }
            if let objective {
                guard let wantLoss = step.loss, let wantEvaluations = step.evaluations else {
                    throw GoldenError("closure-driven step \(stepIndex) has no loss or evaluation count")
                }
                var evaluations = 0
                let loss = try optimizer.step {
                    evaluations += 1
                    return try evaluate(objective, on: parameters, dtype: golden.dtype)
                }
                if let failure = compare([loss], [wantLoss], golden, &maxError) {
                    return .fail("step=\(stepIndex + 1) loss \(failure)")
                }
                guard evaluations == wantEvaluations else {
                    return .fail("step=\(stepIndex + 1) evaluations: got=\(evaluations) want=\(wantEvaluations)")
                }
            } else {
                guard let grads = step.grads, grads.count == parameters.count else {
                    throw GoldenError("step \(stepIndex) has \(step.grads?.count ?? 0) gradients for \(parameters.count) parameters")
                }
                for (parameter, grad) in zip(parameters, grads) {
                    switch grad {
                    case .none:
                        parameter.grad = nil
                        parameter.sparseGrad = nil
                    case .dense(let values):
                        parameter.sparseGrad = nil
                        parameter.grad = try Tensor(values, shape: parameter.shape, dtype: golden.dtype)
                    case .sparse(let indices, let values):
                        parameter.grad = nil
                        let rowShape = Array(parameter.shape.dropFirst())
                        guard values.count == indices.count * rowShape.reduce(1, *) else {
                            throw GoldenError("a sparse gradient of step \(stepIndex + 1) has \(values.count) values for \(indices.count) rows of shape \(rowShape)")
                        }
                        parameter.sparseGrad = try RowSparseGradient(
                            indices: indices, values: Tensor(values, shape: [indices.count] + rowShape, dtype: golden.dtype))
                    }
                }
                try optimizer.step()
            }
            for (index, parameter) in parameters.enumerated() {
                if let failure = compare(parameter.toArray(), step.params[index], golden, &maxError) {
                    return .fail("step=\(stepIndex + 1) param=\(index) \(failure)")
                }
            }
        }

        for (index, expected) in golden.state.enumerated() where index < parameters.count {
            let state = optimizer.state(for: parameters[index])
            for key in expected.keys.sorted() {
                let want = expected[key]!
                if want is NSNull { continue }
                let wantValues = try numbers(want, "state \(key)")
                let got: [Double]
                if key == "step" {
                    guard let state else { return .fail("param=\(index) state step: missing, want \(wantValues[0])") }
                    got = [Double(state.step)]
                } else if let value = state?.values[key] {
                    got = [value]
                } else {
                    guard let tensor = state?[key] else {
                        return .fail("param=\(index) state \(key): not kept by this optimizer")
                    }
                    got = tensor.toArray()
                }
                if let failure = compare(got, wantValues, golden, &maxError) {
                    return .fail("state param=\(index) key=\(key) \(failure)")
                }
            }
        }
        // Scalars the reference keeps in a group (per-group step counts, schedule-free AdamW's
        // sums): compared where this library keeps the same key in the group's state dict entry.
        let savedGroups = optimizer.stateDict().paramGroups
        for (number, expected) in golden.groupState.enumerated() where number < savedGroups.count {
            for key in expected.keys.sorted() {
                guard let want = expected[key] as? NSNumber,
                      let got = savedGroups[number][key]?.doubleValue else { continue }
                if let failure = compare([got], [exactDouble(want)], golden, &maxError) {
                    return .fail("group=\(number) \(key) \(failure)")
                }
            }
        }
        return .pass(maxError: maxError)
    }

    /// A weight-averaging case: each step sets the parameters and folds them into the average
    /// (torch's `AveragedModel.update_parameters`), whose values and count are compared.
    private func replayAveraging(_ golden: GoldenCase) throws -> ReplayOutcome {
        guard let strategy = try averagingStrategy(golden.optimizer, golden.groups.first?.options ?? [:]) else {
            return .skip("weight averaging \(golden.optimizer) is not known to this replayer")
        }
        let parameters = try zip(golden.initialParams, golden.shapes).map { data, shape in
            try Tensor(data, shape: shape, dtype: golden.dtype)
        }
        let average: AveragedParameters
        do {
            average = try AveragedParameters(parameters, strategy: strategy, execution: execution)
        } catch let error as OptimError {
            return .fail("the average refused the case's options: \(error.message)")
        }
        var maxError = 0.0
        for (stepIndex, step) in golden.steps.enumerated() {
            guard let values = step.setParams, values.count == parameters.count,
                  let want = step.averaged, want.count == parameters.count else {
                throw GoldenError("averaging step \(stepIndex) needs set_params and averaged for every parameter")
            }
            for (parameter, data) in zip(parameters, values) {
                try parameter.copy(from: Tensor(data, shape: parameter.shape, dtype: golden.dtype))
            }
            try average.update(from: parameters)
            for (index, tensor) in average.averages.enumerated() {
                if let failure = compare(tensor.toArray(), want[index], golden, &maxError) {
                    return .fail("step=\(stepIndex + 1) average=\(index) \(failure)")
                }
            }
            if let count = step.averagedCount, count != average.count {
                return .fail("step=\(stepIndex + 1) n_averaged: got=\(average.count) want=\(count)")
            }
        }
        return .pass(maxError: maxError)
    }

    /// Evaluates `objective` at the parameters (concatenated in order) and writes its gradient
    /// into them, as a closure passed to `step` does; returns the loss.
    private func evaluate(_ objective: GoldenObjective.Function, on parameters: [Tensor], dtype: DType) throws -> Double {
        let (loss, gradient) = objective(parameters.flatMap { $0.toArray() })
        var offset = 0
        for parameter in parameters {
            parameter.grad = try Tensor(Array(gradient[offset..<offset + parameter.count]), shape: parameter.shape,
                                        dtype: dtype)
            offset += parameter.count
        }
        return loss
    }

    /// nil when every value matches within the case's tolerance; otherwise the first mismatch.
    private func compare(_ got: [Double], _ want: [Double], _ golden: GoldenCase, _ maxError: inout Double) -> String? {
        guard got.count == want.count else { return "has \(got.count) values, want \(want.count)" }
        for (index, (g, w)) in zip(got, want).enumerated() {
            if g.isNaN && w.isNaN { continue }
            if g == w { continue }
            let error = abs(g - w)
            guard error <= golden.atol + golden.rtol * abs(w) else {
                return "index=\(index) got=\(g) want=\(w)"
            }
            maxError = max(maxError, error)
        }
        return nil
    }
}

/// The averaging strategy torch's `AveragedModel` options name (`strategy` "swa", or "ema" with
/// a `decay`), nil for another class name.
func averagingStrategy(_ name: String, _ options: [String: Any]) throws -> AveragedParameters.Strategy? {
    guard name == "AveragedModel" else { return nil }
    switch options["strategy"] as? String {
    case "swa"?: return .swa
    case "ema"?:
        guard let decay = (options["decay"] as? NSNumber).map(exactDouble) else {
            throw GoldenError("an ema average needs a decay")
        }
        return .ema(decay: decay)
    case let other: throw GoldenError("averaging strategy \(other ?? "none") is not known")
    }
}

/// Constructor options torch refuses (or accepts), from a file with an "errors" list.
public struct GoldenErrorCase {
    public let optimizer: String
    public let options: [String: Any]
    /// torch's error, or nil where torch accepted the options.
    public let torchError: String?
    /// The shapes of the parameters to build with; nil: one parameter of two elements.
    public let shapes: [[Int]]?
    /// Why the input cannot be checked here, as the file says (reported as unsupported).
    public let unsupported: String?
    private let givenID: String?
    /// The error torch raised at the first step of an optimizer it built with these options, where
    /// the file records one: this library refuses such options when it builds the optimizer.
    public let torchStepError: String?

    /// The file's `id`, or one made of the optimizer and its options.
    public var id: String {
        if let givenID { return givenID }
        let keys = options.keys.sorted().map { "\($0)=\(options[$0]!)" }.joined(separator: ",")
        return "errors/\(optimizer)/\(keys)"
    }

    /// torch's message without the name of its exception: the start of this library's message
    /// for the same options.
    public var torchWording: String? {
        guard let torchError else { return nil }
        guard let colon = torchError.range(of: ": "),
              torchError[..<colon.lowerBound].allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
            return torchError
        }
        return String(torchError[colon.upperBound...])
    }

    /// The entries of a file's "errors" list; empty when it has none.
    public static func load(data: Data) throws -> [GoldenErrorCase] {
        try load(root: JSONSerialization.jsonObject(with: quotingNonFiniteNumbers(data)))
    }

    /// The entries of a parsed file's "errors" list.
    static func load(root: Any) throws -> [GoldenErrorCase] {
        guard let list = (root as? [String: Any])?["errors"] as? [[String: Any]] else { return [] }
        return try list.map { raw in
            let shapes = try (raw["params"] as? [Any]).map { params in
                try params.map { parameter -> [Int] in
                    guard let shape = (parameter as? [String: Any])?["shape"] as? [Int] else {
                        throw GoldenError("a parameter of the errors entry \(raw["id"] ?? "?") has no shape")
                    }
                    return shape
                }
            }
            return GoldenErrorCase(optimizer: raw["optimizer"] as? String ?? "?",
                                   options: raw["options"] as? [String: Any] ?? [:],
                                   torchError: raw["error"] as? String, shapes: shapes,
                                   unsupported: raw["unsupported"] as? String, givenID: raw["id"] as? String,
                                   torchStepError: raw["step_error"] as? String)
        }
    }

    /// Builds the optimizer over the entry's parameters (by default one, a matrix for an optimizer
    /// of matrices) with these options: passes when this library refuses what torch refused, at
    /// construction or at the first step, and accepts what torch accepted.
    public func check(execution: Execution) -> ReplayOutcome {
        if let unsupported { return .unsupported(unsupported) }
        do {
            guard let refusal = try refusal(execution: execution) else {
                return torchError == nil ? .pass(maxError: 0) : .fail("accepted options that torch refuses (\(torchError!))")
            }
            if torchError == nil
                && (torchStepError != nil || TorchOptions.refusedAtFirstStep(optimizer: optimizer, options: options)) {
                return .pass(maxError: 0)
            }
            return torchError != nil ? .pass(maxError: 0) : .fail("refused options that torch accepts: \(refusal)")
        } catch let error as GoldenSkip {
            return .skip(error.reason)
        } catch {
            return .fail("\(error)")
        }
    }

    /// This library's message when it refuses the options, nil when it accepts them.
    public func refusal(execution: Execution) throws -> String? {
        do {
            if let strategy = try averagingStrategy(optimizer, options) {
                _ = try AveragedParameters(parameters(defaultShape: [2]), strategy: strategy, execution: execution)
                return nil
            }
            guard let entry = OptimizerCatalog.entries(replaying: optimizer).first else {
                throw GoldenSkip(reason: "\(optimizer) is not implemented")
            }
            let parameters = try parameters(defaultShape: entry.needsMatrices ? [1, 2] : [2])
            _ = try entry.make(parameters, options: torchValues(options), execution: execution)
            return nil
        } catch let error as OptimError {
            return error.message
        }
    }

    /// The entry's parameters, or one of `defaultShape`, filled with alternating ±0.5. A shape
    /// from the file is refused past 2^24 elements: a refusal check needs no more.
    private func parameters(defaultShape: [Int]) throws -> [Tensor] {
        try (shapes ?? [defaultShape]).map { shape in
            let count = try shape.reduce(1) { count, extent in
                let (product, overflow) = count.multipliedReportingOverflow(by: extent)
                guard extent >= 0, !overflow, product <= 1 << 24 else {
                    throw GoldenError("the errors entry \(id) has a parameter of shape \(shape), negative or past 2^24 elements")
                }
                return product
            }
            return try Tensor((0..<count).map { $0 % 2 == 0 ? 0.5 : -0.5 }, shape: shape, dtype: .float32)
        }
    }
}

/// A check that cannot run here (its optimizer is not implemented).
struct GoldenSkip: Error {
    let reason: String
}
