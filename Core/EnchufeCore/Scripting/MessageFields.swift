/// The parts of a message a Lua call is given. Making the `msg` table costs more than most
/// expressions do, the readings most of all, so an expression that reads only `msg.payload.w` is
/// given a `msg` with only its payload: it cannot tell the difference.
public struct MessageFields: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let payload = MessageFields(rawValue: 1)
    public static let topic = MessageFields(rawValue: 2)
    public static let attributes = MessageFields(rawValue: 4)
    public static let readings = MessageFields(rawValue: 8)
    public static let all: MessageFields = [.payload, .topic, .attributes, .readings]

    static let names: [String: MessageFields] = ["payload": .payload, "topic": .topic, "attributes": .attributes, "readings": .readings]

    /// The fields an expression can read: those it names as `msg.FIELD`. Any other use of `msg`
    /// (`msg[k]`, `pairs(msg)`, `f(msg)`, `msg.other`), a long string or a comment, where a plain
    /// scan could be wrong, gives every field.
    public static func read(byExpression text: String) -> MessageFields {
        let bytes = Array(text.utf8)
        if text.contains("[[") || text.contains("[=") || text.contains("--") { return .all }
        var fields: MessageFields = []
        var i = 0
        func isIdentifier(_ b: UInt8) -> Bool { b == UInt8(ascii: "_") || (b >= 48 && b <= 57) || ((b | 0x20) >= 97 && (b | 0x20) <= 122) }
        func skipSpace() { while i < bytes.count, bytes[i] == 32 || bytes[i] == 9 || bytes[i] == 10 || bytes[i] == 13 { i += 1 } }
        var previous: UInt8 = 0  // the last byte that is not space, before the token
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "\"") || b == UInt8(ascii: "'") {
                i += 1
                while i < bytes.count, bytes[i] != b {
                    if bytes[i] == UInt8(ascii: "\\") { i += 1 }
                    i += 1
                }
                i += 1
                previous = b
                continue
            }
            if b == UInt8(ascii: "."), i + 1 < bytes.count, bytes[i + 1] == UInt8(ascii: ".") {
                while i < bytes.count, bytes[i] == UInt8(ascii: ".") { i += 1 }  // `..` or `...`: not a field access
                previous = UInt8(ascii: "+")
                continue
            }
            guard isIdentifier(b) else {
                if !(b == 32 || b == 9 || b == 10 || b == 13) { previous = b }
                i += 1
                continue
            }
            let start = i
            while i < bytes.count, isIdentifier(bytes[i]) { i += 1 }
            let word = bytes[start..<i]
            let isMsg = word.elementsEqual("msg".utf8) && previous != UInt8(ascii: ".") && previous != UInt8(ascii: ":")
            previous = bytes[i - 1]
            guard isMsg else { continue }
            skipSpace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: "."), i + 1 < bytes.count, bytes[i + 1] != UInt8(ascii: ".") else { return .all }
            i += 1
            skipSpace()
            let nameStart = i
            while i < bytes.count, isIdentifier(bytes[i]) { i += 1 }
            guard let field = names[String(decoding: bytes[nameStart..<i], as: UTF8.self)] else { return .all }
            fields.insert(field)
            previous = UInt8(ascii: "x")
        }
        return fields
    }
}

/// The fields of a reading a script's `msg` holds (see `ScriptNames`).
public struct ReadingFields: OptionSet, Sendable, Hashable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    // In the order of the reader's `LuaReadingField`, whose raw value is the bit.
    public static let series = ReadingFields(rawValue: 1 << 0)
    public static let quantity = ReadingFields(rawValue: 1 << 1)
    public static let resolution = ReadingFields(rawValue: 1 << 2)
    public static let unit = ReadingFields(rawValue: 1 << 3)
    public static let quality = ReadingFields(rawValue: 1 << 4)
    public static let tenant = ReadingFields(rawValue: 1 << 5)
    public static let source = ReadingFields(rawValue: 1 << 6)
    public static let value = ReadingFields(rawValue: 1 << 7)
    public static let ts = ReadingFields(rawValue: 1 << 8)
    public static let tags = ReadingFields(rawValue: 1 << 9)
    public static let all = ReadingFields(rawValue: 1023)

    static let names: [String: ReadingFields] = [
        "series": .series, "quantity": .quantity, "ts": .ts, "resolution": .resolution, "value": .value, "unit": .unit,
        "quality": .quality, "tenant": .tenant, "source": .source, "tags": .tags,
    ]
}

/// The parts of a message and the fields of a reading a `process(msg)` script can reach: those
/// whose names appear in its text. The others are not put into `msg` (making them, and reading
/// them back, was most of a `lua` node's time) and are taken from the message it was given.
///
/// A script names a field only with the word itself (`msg.payload`, `{ unit = "kW" }`), unless it
/// computes keys: a script with an index that is not a whole number (`t[k]`, `t["unit"]`, a long
/// string), or with `pairs`, `next`, `rawget`, `rawset`, `load`, `getmetatable`, `_ENV` or `_G`
/// anywhere, is given every field. The words are looked for everywhere, strings and comments
/// included, so a mention anywhere counts.
public struct ScriptNames: Sendable, Hashable {
    public var message: MessageFields
    public var reading: ReadingFields

    public static let all = ScriptNames(message: .all, reading: .all)

    static let computedKeys: Set<String> = ["pairs", "next", "rawget", "rawset", "load", "getmetatable", "_ENV", "_G"]

    public init(message: MessageFields, reading: ReadingFields) {
        self.message = message
        self.reading = reading
    }

    public init(script text: String) {
        var names = ScriptNames(message: [], reading: [])
        let bytes = Array(text.utf8)
        func isIdentifier(_ b: UInt8) -> Bool { b == UInt8(ascii: "_") || (b >= 48 && b <= 57) || ((b | 0x20) >= 97 && (b | 0x20) <= 122) }
        func isDigit(_ b: UInt8) -> Bool { b >= 48 && b <= 57 }
        func isSpace(_ b: UInt8) -> Bool { b == 32 || b == 9 || b == 10 || b == 13 }
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "[") {
                // Only `[` whole number `]`.
                var j = i + 1
                while j < bytes.count, isSpace(bytes[j]) { j += 1 }
                let digits = j
                while j < bytes.count, isDigit(bytes[j]) { j += 1 }
                guard j > digits else { self = .all; return }
                while j < bytes.count, isSpace(bytes[j]) { j += 1 }
                guard j < bytes.count, bytes[j] == UInt8(ascii: "]") else { self = .all; return }
                i = j + 1
                continue
            }
            guard isIdentifier(b) else {
                i += 1
                continue
            }
            let start = i
            while i < bytes.count, isIdentifier(bytes[i]) { i += 1 }
            let word = String(decoding: bytes[start..<i], as: UTF8.self)
            if Self.computedKeys.contains(word) {
                self = .all
                return
            }
            if let part = MessageFields.names[word] { names.message.insert(part) }
            if let field = ReadingFields.names[word] { names.reading.insert(field) }
        }
        self = names
    }

    /// What the script does not name: left out of its `msg`.
    var unnamedParts: MessageFields { MessageFields.all.subtracting(message) }
    var unnamedFields: ReadingFields { ReadingFields.all.subtracting(reading) }

    /// Whether the script is given every field (nothing is left out).
    public var isAll: Bool { message == .all && reading == .all }
}
