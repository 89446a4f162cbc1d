import Foundation
import Optim

/// A file of reference trajectories in the `optim-golden/1` format (see Docs/golden.md):
/// optimizer cases, each a list of steps with the gradients given and the parameters expected.
public struct GoldenFile: @unchecked Sendable {
    public let cases: [GoldenCase]
    /// The file's "errors" list: options to refuse or accept.
    public let errorChecks: [GoldenErrorCase]
    /// The file's "schedulers" list.
    public let schedules: [GoldenSchedule]

    public init(contentsOf url: URL, allowingNoCases: Bool = false) throws {
        let data = try Data(contentsOf: url)
        try self.init(data: data, source: url.path, allowingNoCases: allowingNoCases)
    }

    /// Parses `data`. A file without a "cases" list (an errors-only file) is an error unless
    /// `allowingNoCases`.
    public init(data: Data, source: String = "golden data", allowingNoCases: Bool = false) throws {
        let root: Any
        do {
            root = try JSONSerialization.jsonObject(with: quotingNonFiniteNumbers(data))
        } catch {
            throw GoldenError("\(source) is not valid JSON: \(error)")
        }
        guard let object = root as? [String: Any] else { throw GoldenError("\(source) is not a JSON object") }
        // One parse for every list: a large file's parse takes seconds.
        errorChecks = try GoldenErrorCase.load(root: object)
        schedules = try GoldenSchedule.load(root: object)
        guard let cases = object["cases"] as? [[String: Any]] else {
            if allowingNoCases && (object["errors"] != nil || object["schedulers"] != nil) {
                self.cases = []
                return
            }
            throw GoldenError("\(source) has no \"cases\" list of objects")
        }
        self.cases = try cases.enumerated().map { index, raw in
            do { return try GoldenCase(raw) } catch let error as GoldenError {
                throw GoldenError("\(source), case \(index): \(error.message)")
            }
        }
    }
}

public struct GoldenError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A gradient given for one parameter at one step.
public enum GoldenGradient: Sendable {
    case none
    case dense([Double])
    /// Rows of a row-sparse gradient; rows may repeat and are summed.
    case sparse(indices: [Int], values: [Double])
}

extension GoldenGradient {
    /// Whether a NaN or an infinity is among its values.
    public var hasNonFiniteValue: Bool {
        switch self {
        case .none: false
        case .dense(let values), .sparse(_, let values): values.contains { !$0.isFinite }
        }
    }
}

public struct GoldenStep: Sendable {
    /// One gradient per parameter (gradient-driven cases).
    public let grads: [GoldenGradient]?
    /// The loss `step(closure)` returned and the closure calls it made (closure-driven cases).
    public let loss: Double?
    public let evaluations: Int?
    /// Every parameter after the step.
    public let params: [[Double]]
    /// Weight-averaging cases: the parameters' new values, the averages after folding them in,
    /// and the number of updates so far.
    public let setParams: [[Double]]?
    public let averaged: [[Double]]?
    public let averagedCount: Int?
}

/// Immutable once parsed; `Any` holds only JSON values.
public struct GoldenCase: @unchecked Sendable {
    public let id: String
    public let optimizer: String
    public let dtype: DType
    public let groups: [(params: [Int], options: [String: Any])]
    public let shapes: [[Int]]
    public let initialParams: [[Double]]
    public let steps: [GoldenStep]
    /// Per parameter, torch's state keys after the last step (`NSNull` where not compared).
    public let state: [[String: Any]]
    public let rtol: Double
    public let atol: Double
    public let reference: String
    public let objective: String?
    /// Per group, scalars the reference keeps in the group after the last step (`step`,
    /// `weight_sum`, ...); empty where the file gives none.
    public let groupState: [[String: Any]]
    /// Why this library cannot replay the case, as its generator says (an input the format or
    /// the library cannot express); reported as unsupported with this reason.
    public let unsupported: String?

    init(_ raw: [String: Any]) throws {
        func field<T>(_ name: String, _ type: T.Type) throws -> T {
            guard let value = raw[name] as? T else { throw GoldenError("missing or malformed field \"\(name)\"") }
            return value
        }
        id = try field("id", String.self)
        optimizer = try field("optimizer", String.self)
        let dtypeName = try field("dtype", String.self)
        guard let dtype = DType(rawValue: dtypeName) else { throw GoldenError("unknown dtype \(dtypeName)") }
        self.dtype = dtype
        groups = try field("groups", [[String: Any]].self).map { group in
            guard let params = group["params"] as? [Int] else { throw GoldenError("a group has no \"params\" list") }
            return (params, group["options"] as? [String: Any] ?? [:])
        }
        let params = try field("params", [[String: Any]].self)
        shapes = try params.map { p in
            guard let shape = p["shape"] as? [Int] else { throw GoldenError("a parameter has no shape") }
            return shape
        }
        initialParams = try params.map { try numbers($0["data"], "parameter data") }
        steps = try field("steps", [[String: Any]].self).map { step in
            let grads = try (step["grads"] as? [Any]).map { list in
                try list.map { try gradient($0) }
            }
            // A loss may be NaN or infinite (LBFGS maximizing), which reads as a quoted token.
            let loss = try step["loss"].flatMap { $0 is NSNull ? nil : try numbers($0, "loss").first }
            return GoldenStep(grads: grads, loss: loss,
                              evaluations: (step["evaluations"] as? NSNumber)?.intValue,
                              params: try (step["params"] as? [Any] ?? []).map { try numbers($0, "step params") },
                              setParams: try (step["set_params"] as? [Any])?.map { try numbers($0, "set_params") },
                              averaged: try (step["averaged"] as? [Any])?.map { try numbers($0, "averaged") },
                              averagedCount: (step["n_averaged"] as? NSNumber)?.intValue)
        }
        state = (raw["state"] as? [Any])?.map { $0 as? [String: Any] ?? [:] } ?? []
        let tolerance = raw["tolerance"] as? [String: Any] ?? [:]
        rtol = (tolerance["rtol"] as? NSNumber).map(exactDouble) ?? 0
        atol = (tolerance["atol"] as? NSNumber).map(exactDouble) ?? 0
        reference = raw["reference"] as? String ?? "forloop"
        objective = raw["objective"] as? String
        groupState = (raw["group_state"] as? [Any])?.map { $0 as? [String: Any] ?? [:] } ?? []
        unsupported = raw["unsupported"] as? String
    }
}

/// The `Double` a JSON number's text denotes. `JSONSerialization` on Linux reads long decimals
/// (0.09000000000000001) as `NSDecimalNumber`, whose `doubleValue` can be off in the last
/// places (0.09000000000000004); the decimal's text, parsed again, is correctly rounded.
func exactDouble(_ number: NSNumber) -> Double {
    if number is NSDecimalNumber, let parsed = Double(number.stringValue) { return parsed }
    return number.doubleValue
}

/// A list of numbers (or a single number) as `Double`, with Python's `NaN` and `Infinity`.
func numbers(_ value: Any?, _ what: String) throws -> [Double] {
    func number(_ item: Any) throws -> Double {
        if let number = item as? NSNumber { return exactDouble(number) }
        switch item as? String {
        case "NaN": return .nan
        case "Infinity": return .infinity
        case "-Infinity": return -.infinity
        default: throw GoldenError("\(what) holds a non-number: \(item)")
        }
    }
    if let list = value as? [Any] { return try list.map(number) }
    if let value { return [try number(value)] }
    throw GoldenError("\(what) is missing")
}

/// Python's json module writes non-finite floats as the bare tokens NaN, Infinity and
/// -Infinity, which are not JSON; this quotes them (outside strings) so that they parse, and
/// `numbers` reads them back.
func quotingNonFiniteNumbers(_ data: Data) -> Data {
    let bytes = [UInt8](data)
    guard bytes.contains(UInt8(ascii: "N")) || bytes.contains(UInt8(ascii: "I")) else { return data }
    var output = [UInt8]()
    output.reserveCapacity(bytes.count + 64)
    var inString = false
    var escaped = false
    var index = 0
    let tokens: [[UInt8]] = [Array("-Infinity".utf8), Array("Infinity".utf8), Array("NaN".utf8)]
    while index < bytes.count {
        let byte = bytes[index]
        if inString {
            output.append(byte)
            if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
            index += 1
            continue
        }
        if byte == UInt8(ascii: "\"") {
            inString = true
            output.append(byte)
            index += 1
            continue
        }
        if let token = tokens.first(where: { bytes[index...].starts(with: $0) }) {
            output.append(UInt8(ascii: "\""))
            output.append(contentsOf: token)
            output.append(UInt8(ascii: "\""))
            index += token.count
            continue
        }
        output.append(byte)
        index += 1
    }
    return Data(output)
}

private func gradient(_ value: Any) throws -> GoldenGradient {
    if value is NSNull { return .none }
    if let sparse = value as? [String: Any] {
        guard let indices = sparse["indices"] as? [Int] else { throw GoldenError("a sparse gradient has no indices") }
        return .sparse(indices: indices, values: try numbers(sparse["values"], "sparse values"))
    }
    return .dense(try numbers(value, "gradient"))
}
