import Foundation

/// Reference cases this library is known not to match yet, each with the reason (a file
/// `{"known_differences": [{"id", "reason"}]}`). A replay reports such a case's failure as a
/// known difference instead of a failure, and fails the case once it matches, so that the list
/// only shrinks: whoever fixes the difference removes its entry.
public struct KnownDifferences: Sendable {
    /// Reasons by case id (the id of the golden case or error check, without a catalog
    /// entry's `[name]` suffix).
    public let reasons: [String: String]

    public static let none = KnownDifferences(reasons: [:])

    public init(reasons: [String: String]) { self.reasons = reasons }

    public init(contentsOf url: URL) throws {
        let root = try JSONSerialization.jsonObject(with: Data(contentsOf: url))
        guard let list = (root as? [String: Any])?["known_differences"] as? [[String: Any]] else {
            throw GoldenError("\(url.path) has no \"known_differences\" list")
        }
        var reasons: [String: String] = [:]
        for entry in list {
            guard let id = entry["id"] as? String, let reason = entry["reason"] as? String else {
                throw GoldenError("\(url.path): an entry needs an \"id\" and a \"reason\"")
            }
            reasons[id] = reason
        }
        self.reasons = reasons
    }

    /// The outcome to report for case `id`: a failure of a known difference becomes
    /// `.knownDifference`, and a known difference that passes becomes a failure.
    public func judge(_ id: String, _ outcome: ReplayOutcome) -> ReplayOutcome {
        guard let reason = reasons[id] else { return outcome }
        switch outcome {
        case .fail(let detail): return .knownDifference("\(reason) (\(detail))")
        case .pass: return .fail("matches the reference now, but is listed as a known difference: remove its entry")
        case .skip, .unsupported, .knownDifference: return outcome
        }
    }
}
