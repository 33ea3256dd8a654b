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
