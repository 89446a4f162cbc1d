/// JSON text for checkpoint files, written and read without Foundation. Numbers that are not
/// finite are written as Python's `json` module writes them (`NaN`, `Infinity`, `-Infinity`),
/// so that a file saved here loads in Python and back. The reader takes untrusted bytes: it
/// checks every index before use, limits nesting, and throws an error that says where the
/// text stopped making sense; it never traps.
enum JSONText {
    /// Nesting deeper than this is refused (a state dict nests four levels).
    static let maximumDepth = 64

    static func encode(_ value: StateValue) -> String {
        var text = ""
        write(value, into: &text)
        return text
    }

    private static func write(_ value: StateValue, into text: inout String) {
        switch value {
        case .null: text += "null"
        case .bool(let flag): text += flag ? "true" : "false"
        case .integer(let number): text += String(number)
        case .number(let number): text += numberText(number)
        case .string(let string): writeString(string, into: &text)
        case .list(let items):
            text += "["
            for (position, item) in items.enumerated() {
                if position > 0 { text += "," }
                write(item, into: &text)
            }
            text += "]"
        case .dictionary(let entries):
            text += "{"
            for (position, key) in entries.keys.sorted().enumerated() {
                if position > 0 { text += "," }
                writeString(key, into: &text)
                text += ":"
                if let item = entries[key] { write(item, into: &text) }
            }
            text += "}"
        case .tensor(let tensor):
            // Tensors travel as safetensors entries; a tensor here is written by value.
            write(.dictionary(["dtype": .string(tensor.dtype.rawValue),
                               "shape": .list(tensor.shape.map(StateValue.integer)),
                               "data": .list(tensor.data.map(StateValue.number))]), into: &text)
        }
    }

    /// The shortest text that reads back as the same `Double` (Swift's `description`), always
    /// with a fraction or exponent so that it reads back as a number, not an integer.
    private static func numberText(_ number: Double) -> String {
        if number.isNaN { return "NaN" }
        if number.isInfinite { return number > 0 ? "Infinity" : "-Infinity" }
        let text = number.description
        return text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) ? text : text + ".0"
    }

    private static func writeString(_ string: String, into text: inout String) {
        text += "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": text += "\\\""
            case "\\": text += "\\\\"
            case "\n": text += "\\n"
            case "\r": text += "\\r"
            case "\t": text += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                text += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: text.unicodeScalars.append(scalar)
            }
        }
        text += "\""
    }

    /// The value that `bytes` (UTF-8) hold, which must be one JSON value and nothing else.
    static func decode(_ bytes: [UInt8], what: String) throws -> StateValue {
        var reader = Reader(bytes: bytes, what: what)
        let value = try reader.value(depth: 0)
        reader.skipWhitespace()
        guard reader.position == bytes.count else { throw reader.error("text after the end of the JSON value") }
        return value
    }

    private struct Reader {
        let bytes: [UInt8]
        let what: String
        var position = 0

        func error(_ message: String) -> OptimError {
            OptimError(.invalidArgument, "\(what): \(message) at byte \(position) of its JSON")
        }

        var current: UInt8? { position < bytes.count ? bytes[position] : nil }

        mutating func skipWhitespace() {
            while let byte = current, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { position += 1 }
        }

        mutating func expect(_ literal: String) throws {
            for byte in literal.utf8 {
                guard current == byte else { throw error("expected \(literal)") }
                position += 1
            }
        }

        mutating func value(depth: Int) throws -> StateValue {
            guard depth <= JSONText.maximumDepth else { throw error("nesting deeper than \(JSONText.maximumDepth) levels") }
            skipWhitespace()
            guard let byte = current else { throw error("the text ends where a value should start") }
            switch byte {
            case UInt8(ascii: "{"):
                position += 1
                var entries: [String: StateValue] = [:]
                skipWhitespace()
                if current == UInt8(ascii: "}") {
                    position += 1
                    return .dictionary(entries)
                }
                while true {
                    skipWhitespace()
                    guard current == UInt8(ascii: "\"") else { throw error("expected a key") }
                    let key = try string()
                    skipWhitespace()
                    try expect(":")
                    guard entries.updateValue(try value(depth: depth + 1), forKey: key) == nil else {
                        throw error("the key \"\(key)\" appears twice")
                    }
                    skipWhitespace()
                    if current == UInt8(ascii: ",") { position += 1; continue }
                    try expect("}")
                    return .dictionary(entries)
                }
            case UInt8(ascii: "["):
                position += 1
                var items: [StateValue] = []
                skipWhitespace()
                if current == UInt8(ascii: "]") {
                    position += 1
                    return .list(items)
                }
                while true {
                    items.append(try value(depth: depth + 1))
                    skipWhitespace()
                    if current == UInt8(ascii: ",") { position += 1; continue }
                    try expect("]")
                    return .list(items)
                }
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): try expect("true"); return .bool(true)
            case UInt8(ascii: "f"): try expect("false"); return .bool(false)
            case UInt8(ascii: "n"): try expect("null"); return .null
            case UInt8(ascii: "N"): try expect("NaN"); return .number(.nan)
            case UInt8(ascii: "I"): try expect("Infinity"); return .number(.infinity)
            default: return try number()
            }
        }

        mutating func number() throws -> StateValue {
            let start = position
            if current == UInt8(ascii: "-") {
                position += 1
                if current == UInt8(ascii: "I") {
                    try expect("Infinity")
                    return .number(-.infinity)
                }
            }
            var isInteger = true
            while let byte = current {
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): break
                case UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"), UInt8(ascii: "+"), UInt8(ascii: "-"):
                    isInteger = false
                default:
                    return try finishNumber(from: start, isInteger: isInteger)
                }
                position += 1
            }
            return try finishNumber(from: start, isInteger: isInteger)
        }

        func finishNumber(from start: Int, isInteger: Bool) throws -> StateValue {
            let text = String(decoding: bytes[start..<position], as: UTF8.self)
            guard !text.isEmpty, text != "-" else { throw error("expected a value") }
            // JSON has no leading zeros, no leading `+` and no bare `.`: refuse what Double's
            // parser would accept beyond the grammar.
            let digits = text.hasPrefix("-") ? text.dropFirst() : Substring(text)
            guard let first = digits.first, first.isASCII, first.isNumber,
                  !(first == "0" && digits.count > 1 && digits.dropFirst().first?.isNumber == true) else {
                throw error("\"\(text)\" is not a JSON number")
            }
            if isInteger, let integer = Int(text) { return .integer(integer) }
            guard let number = Double(text) else { throw error("\"\(text)\" is not a JSON number") }
            return .number(number)
        }

        mutating func string() throws -> String {
            position += 1  // the opening quote
            var scalars = String.UnicodeScalarView()
            var runStart = position
            func flush(_ reader: Reader, _ scalars: inout String.UnicodeScalarView) throws {
                let bytes = reader.bytes[runStart..<reader.position]
                let run = String(decoding: bytes, as: UTF8.self)
                // Decoding replaces invalid UTF-8; a round trip that changes the bytes finds it.
                guard run.utf8.elementsEqual(bytes) else { throw reader.error("a string is not valid UTF-8") }
                scalars.append(contentsOf: run.unicodeScalars)
            }
            while true {
                guard let byte = current else { throw error("a string does not end") }
                switch byte {
                case UInt8(ascii: "\""):
                    try flush(self, &scalars)
                    position += 1
                    return String(scalars)
                case UInt8(ascii: "\\"):
                    try flush(self, &scalars)
                    position += 1
                    guard let escaped = current else { throw error("a string does not end") }
                    position += 1
                    switch escaped {
                    case UInt8(ascii: "\""): scalars.append("\"")
                    case UInt8(ascii: "\\"): scalars.append("\\")
                    case UInt8(ascii: "/"): scalars.append("/")
                    case UInt8(ascii: "b"): scalars.append("\u{08}")
                    case UInt8(ascii: "f"): scalars.append("\u{0C}")
                    case UInt8(ascii: "n"): scalars.append("\n")
                    case UInt8(ascii: "r"): scalars.append("\r")
                    case UInt8(ascii: "t"): scalars.append("\t")
                    case UInt8(ascii: "u"):
                        var code = try hexQuad()
                        if (0xD800..<0xDC00).contains(code) {
                            try expect("\\u")
                            let low = try hexQuad()
                            guard (0xDC00..<0xE000).contains(low) else { throw error("a lone UTF-16 surrogate") }
                            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        }
                        guard let scalar = Unicode.Scalar(code) else { throw error("a lone UTF-16 surrogate") }
                        scalars.append(scalar)
                    default: throw error("an unknown escape in a string")
                    }
                    runStart = position
                case 0..<0x20: throw error("a control character in a string")
                default: position += 1
                }
            }
        }

        mutating func hexQuad() throws -> UInt32 {
            var code: UInt32 = 0
            for _ in 0..<4 {
                guard let byte = current, let digit = hexValue(byte) else { throw error("expected four hex digits") }
                code = code * 16 + digit
                position += 1
            }
            return code
        }

        func hexValue(_ byte: UInt8) -> UInt32? {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(byte - UInt8(ascii: "A") + 10)
            default: nil
            }
        }
    }
}
