/// JSON text (RFC 8259) read from its UTF-8 bytes into `JSONValue` in one pass, in time linear in
/// its length, refusing documents nested deeper than `maxDepth`. Every problem names the line and
/// column (both from 1, columns in bytes) where it was found.
///
/// Strict where RFC 8259 is: no comments, trailing commas, `NaN`/`Infinity`, leading zeros, control
/// characters inside strings, lone surrogates in `\u` escapes or invalid UTF-8; a number too large
/// for a Double is refused rather than read as infinity. Of duplicate keys the last one counts.
public struct JSONReader {
    /// How deep arrays and objects may nest: deep enough for any payload we have seen (Datadis,
    /// REData, ESIOS and AEMET answers nest at most 6), shallow enough that no document is a stack risk.
    public static let defaultMaxDepth = 64

    public struct Problem: Error, CustomStringConvertible, Equatable {
        public var line: Int
        public var column: Int
        public var message: String
        /// The document has more values than the reader was allowed to make.
        public var tooManyValues = false
        public var description: String { "line \(line), column \(column): \(message)" }
    }

    /// The value of a whole document (whitespace around it allowed, nothing else).
    /// `maxValues` bounds the values (scalars, arrays, objects) made, and so the memory a small
    /// document of many tiny values can take.
    public static func parse(_ bytes: UnsafeRawBufferPointer, maxDepth: Int = defaultMaxDepth, maxValues: Int = .max) throws(Problem) -> JSONValue {
        var reader = JSONReader(bytes, maxDepth: maxDepth, maxValues: maxValues)
        return try reader.document()
    }

    /// The value of a whole document given as bytes.
    public static func parse(_ bytes: [UInt8], maxDepth: Int = defaultMaxDepth, maxValues: Int = .max) throws(Problem) -> JSONValue {
        let result: Result<JSONValue, Problem> = bytes.withUnsafeBytes { raw in
            do throws(Problem) { return .success(try parse(raw, maxDepth: maxDepth, maxValues: maxValues)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// The value of a whole document given as text.
    public static func parse(_ text: String, maxDepth: Int = defaultMaxDepth, maxValues: Int = .max) throws(Problem) -> JSONValue {
        var text = text
        let result: Result<JSONValue, Problem> = text.withUTF8 { buffer in
            do throws(Problem) { return .success(try parse(UnsafeRawBufferPointer(buffer), maxDepth: maxDepth, maxValues: maxValues)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    private let bytes: UnsafeRawBufferPointer
    private let maxDepth: Int
    private var valuesLeft: Int
    private var at = 0
    private var depth = 0

    private init(_ bytes: UnsafeRawBufferPointer, maxDepth: Int, maxValues: Int = .max) {
        self.bytes = bytes
        self.maxDepth = maxDepth
        valuesLeft = maxValues
    }

    private mutating func document() throws(Problem) -> JSONValue {
        skipSpace()
        guard at < bytes.count else { throw problem("the document is empty") }
        let value = try self.value()
        skipSpace()
        guard at == bytes.count else { throw problem("unexpected \(found) after the end of the document") }
        return value
    }

    private mutating func value() throws(Problem) -> JSONValue {
        guard at < bytes.count else { throw problem("the document ends where a value was expected") }
        valuesLeft -= 1
        if valuesLeft < 0 {
            var p = problem("more values than the document may have")
            p.tooManyValues = true
            throw p
        }
        switch bytes[at] {
        case UInt8(ascii: "{"): return try object()
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
        default: throw problem("unexpected \(found) where a value was expected")
        }
    }

    private mutating func enter() throws(Problem) {
        depth += 1
        guard depth <= maxDepth else { throw problem("arrays and objects nested deeper than \(maxDepth)") }
    }

    private mutating func object() throws(Problem) -> JSONValue {
        try enter()
        at += 1
        skipSpace()
        if at < bytes.count, bytes[at] == UInt8(ascii: "}") {
            at += 1
            depth -= 1
            return .object([:])
        }
        // Room for the few fields most messages have, made once rather than grown field by field.
        var fields = [String: JSONValue](minimumCapacity: 4)
        while true {
            skipSpace()
            guard at < bytes.count, bytes[at] == UInt8(ascii: "\"") else { throw problem("expected a key in quotes, found \(found)") }
            let key = try string()
            skipSpace()
            guard at < bytes.count, bytes[at] == UInt8(ascii: ":") else { throw problem("expected ':' after the key \"\(key)\", found \(found)") }
            at += 1
            skipSpace()
            fields[key] = try value()
            skipSpace()
            guard at < bytes.count else { throw problem("the document ends inside an object") }
            if bytes[at] == UInt8(ascii: ",") {
                at += 1
                continue
            }
            guard bytes[at] == UInt8(ascii: "}") else { throw problem("expected ',' or '}' in an object, found \(found)") }
            at += 1
            depth -= 1
            return .object(fields)
        }
    }

    private mutating func array() throws(Problem) -> JSONValue {
        try enter()
        at += 1
        var items: [JSONValue] = []
        skipSpace()
        if at < bytes.count, bytes[at] == UInt8(ascii: "]") {
            at += 1
            depth -= 1
            return .array(items)
        }
        while true {
            skipSpace()
            items.append(try value())
            skipSpace()
            guard at < bytes.count else { throw problem("the document ends inside an array") }
            if bytes[at] == UInt8(ascii: ",") {
                at += 1
                continue
            }
            guard bytes[at] == UInt8(ascii: "]") else { throw problem("expected ',' or ']' in an array, found \(found)") }
            at += 1
            depth -= 1
            return .array(items)
        }
    }

    private mutating func literal(_ word: StaticString) throws(Problem) {
        let count = word.utf8CodeUnitCount
        guard at + count <= bytes.count else { throw problem("unexpected \(found) where a value was expected") }
        let start = word.utf8Start
        for i in 0..<count where bytes[at + i] != start[i] {
            throw problem("unexpected \(found) where a value was expected")
        }
        at += count
    }

    /// A string starting at its opening quote; `at` ends past the closing one.
    private mutating func string() throws(Problem) -> String {
        at += 1
        let start = at
        // The common case: no escapes, so the bytes are the string; ASCII needs no validation.
        var high: UInt8 = 0
        while at < bytes.count {
            let b = bytes[at]
            if b == UInt8(ascii: "\"") {
                let text = high < 0x80 ? ascii(start..<at) : try text(start..<at)
                at += 1
                return text
            }
            high |= b
            if b == UInt8(ascii: "\\") { break }
            if b < 0x20 { throw problem("a control character (U+\(hex(b))) inside a string: escape it") }
            at += 1
        }
        var utf8 = Array(bytes[start..<at])
        while at < bytes.count {
            let b = bytes[at]
            switch b {
            case UInt8(ascii: "\""):
                at += 1
                guard let text = String(validating: utf8, as: UTF8.self) else {
                    at = start
                    throw problem("a string that is not valid UTF-8")
                }
                return text
            case UInt8(ascii: "\\"):
                try escape(into: &utf8)
            case 0..<0x20:
                throw problem("a control character (U+\(hex(b))) inside a string: escape it")
            default:
                utf8.append(b)
                at += 1
            }
        }
        throw problem("the document ends inside a string")
    }

    /// Bytes known to be ASCII, as a string.
    private func ascii(_ range: Range<Int>) -> String {
        UnsafeRawBufferPointer(rebasing: bytes[range]).withMemoryRebound(to: UInt8.self) { String(decoding: $0, as: UTF8.self) }
    }

    private func text(_ range: Range<Int>) throws(Problem) -> String {
        let text = UnsafeRawBufferPointer(rebasing: bytes[range]).withMemoryRebound(to: UInt8.self) { String(validating: $0, as: UTF8.self) }
        guard let text else {
            var copy = self
            copy.at = range.lowerBound
            throw copy.problem("a string that is not valid UTF-8")
        }
        return text
    }

    /// One escape sequence, starting at its backslash, appended as UTF-8.
    private mutating func escape(into utf8: inout [UInt8]) throws(Problem) {
        guard at + 1 < bytes.count else { throw problem("the document ends inside a string") }
        let b = bytes[at + 1]
        let simple: UInt8? =
            switch b {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): b
            case UInt8(ascii: "b"): 0x08
            case UInt8(ascii: "f"): 0x0C
            case UInt8(ascii: "n"): 0x0A
            case UInt8(ascii: "r"): 0x0D
            case UInt8(ascii: "t"): 0x09
            default: nil
            }
        if let simple {
            utf8.append(simple)
            at += 2
            return
        }
        guard b == UInt8(ascii: "u") else { throw problem("'\\\(Character(Unicode.Scalar(b)))' is not an escape in JSON") }
        let high = try hexQuad(at + 2)
        var scalar = high
        var length = 6
        if (0xD800..<0xDC00).contains(high) {
            guard at + 7 < bytes.count, bytes[at + 6] == UInt8(ascii: "\\"), bytes[at + 7] == UInt8(ascii: "u") else {
                throw problem("a lone high surrogate \\u\(hex16(high)): it must be followed by a low one")
            }
            let low = try hexQuad(at + 8)
            guard (0xDC00..<0xE000).contains(low) else { throw problem("\\u\(hex16(high)) is not followed by a low surrogate") }
            scalar = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
            length = 12
        } else if (0xDC00..<0xE000).contains(high) {
            throw problem("a lone low surrogate \\u\(hex16(high))")
        }
        utf8.append(contentsOf: Unicode.UTF8.encode(Unicode.Scalar(scalar)!)!)
        at += length
    }

    private func hexQuad(_ from: Int) throws(Problem) -> UInt32 {
        guard from + 4 <= bytes.count else {
            var copy = self
            copy.at = min(from, bytes.count)
            throw copy.problem("the document ends inside a \\u escape")
        }
        var v: UInt32 = 0
        for i in from..<(from + 4) {
            let b = bytes[i]
            let digit: UInt8
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = b - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = b - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = b - UInt8(ascii: "A") + 10
            default:
                var copy = self
                copy.at = i
                throw copy.problem("\\u must be followed by 4 hexadecimal digits")
            }
            v = v << 4 | UInt32(digit)
        }
        return v
    }

    /// A number by the JSON grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    private mutating func number() throws(Problem) -> Double {
        let start = at
        var negative = false
        if bytes[at] == UInt8(ascii: "-") {
            negative = true
            at += 1
        }
        func digits() -> Int {
            let from = at
            while at < bytes.count, bytes[at] >= UInt8(ascii: "0"), bytes[at] <= UInt8(ascii: "9") { at += 1 }
            return at - from
        }
        let integerStart = at
        let integerDigits = digits()
        guard integerDigits > 0 else { throw problem("a number needs digits after '-'") }
        if integerDigits > 1, bytes[integerStart] == UInt8(ascii: "0") {
            at = integerStart
            throw problem("a number must not start with 0 (leading zeros are not JSON)")
        }
        var whole = true
        if at < bytes.count, bytes[at] == UInt8(ascii: ".") {
            at += 1
            whole = false
            guard digits() > 0 else { throw problem("a number needs digits after '.'") }
        }
        if at < bytes.count, bytes[at] == UInt8(ascii: "e") || bytes[at] == UInt8(ascii: "E") {
            at += 1
            whole = false
            if at < bytes.count, bytes[at] == UInt8(ascii: "+") || bytes[at] == UInt8(ascii: "-") { at += 1 }
            guard digits() > 0 else { throw problem("a number needs digits in its exponent") }
        }
        // Whole numbers of up to 15 digits are exact in a Double: no need for strtod.
        if whole, integerDigits <= 15 {
            var v: Int64 = 0
            for i in integerStart..<at { v = v * 10 + Int64(bytes[i] - UInt8(ascii: "0")) }
            return negative ? (v == 0 ? -0.0 : -Double(v)) : Double(v)
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<at]), as: UTF8.self)
        guard let value = Double(text), value.isFinite else {
            at = start
            throw problem("the number \(text.prefix(40)) is too large for a 64-bit float")
        }
        // A value so small it becomes 0 is refused too, as Foundation's reader does.
        if value == 0, text.prefix(while: { $0 != "e" && $0 != "E" }).contains(where: { $0 >= "1" && $0 <= "9" }) {
            at = start
            throw problem("the number \(text.prefix(40)) is too small for a 64-bit float")
        }
        return value
    }

    private mutating func skipSpace() {
        while at < bytes.count {
            switch bytes[at] {
            case 0x20, 0x0A, 0x0D, 0x09: at += 1
            default: return
            }
        }
    }

    /// What is at the current place, as a person reads it in an error.
    private var found: String {
        guard at < bytes.count else { return "the end of the document" }
        let b = bytes[at]
        if b >= 0x20, b < 0x7F { return "'\(Character(Unicode.Scalar(b)))'" }
        return "byte 0x\(hex(b))"
    }

    /// The line and column of the current place (counted only when there is a problem).
    private func problem(_ message: String) -> Problem {
        var line = 1
        var lineStart = 0
        for i in 0..<min(at, bytes.count) where bytes[i] == 0x0A {
            line += 1
            lineStart = i + 1
        }
        return Problem(line: line, column: at - lineStart + 1, message: message)
    }

    private func hex(_ b: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return String([digits[Int(b >> 4)], digits[Int(b & 0xF)]])
    }

    private func hex16(_ v: UInt32) -> String {
        hex(UInt8(truncatingIfNeeded: v >> 8)) + hex(UInt8(truncatingIfNeeded: v))
    }
}
