import Foundation
import Optim

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

/// torch-named options of a golden case as state-dict values.
func torchValues(_ options: [String: Any]) throws -> [String: StateValue] {
    try options.mapValues(StateValue.init(json:))
}

/// What torch's options mean to this library.
public enum TorchOptions {
    /// Options of torch's constructors that choose an implementation (for-loop, foreach,
    /// fused, capturable, differentiable; lion-pytorch's Triton kernel), not the math: this
    /// library has one implementation of each rule and ignores them, as the catalog's
    /// defaults do.
    public static let implementationSelectors: Set<String> = [
        "foreach", "fused", "capturable", "differentiable", "use_triton",
    ]

    /// The options of `options` that `entry` does not have and that do not select torch's
    /// implementation, as `key=value`, sorted. The catalog's options are its reference's
    /// (CatalogTests checks them against the reference's signatures), so the reference did not
    /// have them either and ignored them in its group, as this library does: a replay names
    /// them rather than drop them silently.
    public static func ignored(_ options: [String: Any], by entry: OptimizerEntry) -> [String] {
        options.keys.filter { entry.defaults[$0] == nil && !implementationSelectors.contains($0) }.sorted()
            .map { "\($0)=\(options[$0]!)" }
    }

    /// Whether torch's constructor accepts `options` but its first `step` refuses them: this
    /// library refuses those when the optimizer is built.
    static func refusedAtFirstStep(optimizer: String, options: [String: Any]) -> Bool {
        guard optimizer == "LBFGS", let name = options["line_search_fn"] as? String else { return false }
        return name != LBFGS.LineSearch.strongWolfe.rawValue
    }
}
