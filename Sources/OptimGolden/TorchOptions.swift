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

/// Options torch refuses only when it steps.
enum TorchOptions {
    /// Whether torch's constructor accepts `options` but its first `step` refuses them: this
    /// library refuses those when the optimizer is built.
    static func refusedAtFirstStep(optimizer: String, options: [String: Any]) -> Bool {
        guard optimizer == "LBFGS", let name = options["line_search_fn"] as? String else { return false }
        return name != LBFGS.LineSearch.strongWolfe.rawValue
    }
}
