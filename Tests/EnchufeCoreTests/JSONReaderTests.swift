@testable import EnchufeCore
import Foundation
import Testing

@Suite struct JSONReaderTests {
    /// Foundation's decoder, the reader's oracle: what `JSONValue.parse` used before.
    func foundation(_ text: String) -> JSONValue? {
        try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
    }

    /// Foundation's other parser, `JSONSerialization`. Of a key given twice in one object it keeps
    /// the last value, as the reader does (and JavaScript's and Python's parsers); `JSONDecoder`
    /// keeps the first. RFC 8259 leaves the choice open.
    func serialization(_ text: String) -> JSONValue? {
        guard let any = try? JSONSerialization.jsonObject(with: Data(text.utf8), options: .fragmentsAllowed) else { return nil }
        func value(_ x: Any) -> JSONValue {
            switch x {
            case let n as NSNumber where String(cString: n.objCType) == "c": .bool(n.boolValue)
            case let n as NSNumber: .number(n.doubleValue)
            case let s as String: .string(s)
            case let a as [Any]: .array(a.map(value))
            case let o as [String: Any]: .object(o.mapValues(value))
            default: .null
            }
        }
        return value(any)
    }

    @Test func generatedDocumentsReadAsFoundationReadsThem() throws {
        var random = SeededRandom(seed: 2026)
        for round in 0..<3000 {
            let value = random.value(depth: 0)
            let text = random.text(of: value)
            let ours = try JSONReader.parse(text)
            #expect(ours == value, "round \(round): \(text)")
            #expect(ours == foundation(text), "round \(round): \(text)")
        }
    }

    /// Documents with a byte deleted, inserted or changed: whatever Foundation refuses, the reader
    /// refuses too, and what both read, they read alike. Foundation has two parsers that differ in
    /// two places the damage can reach: of a key given twice in one object `JSONDecoder` keeps the
    /// first value and `JSONSerialization` the last, as the reader does; and `JSONDecoder` refuses a
    /// zero with an unsigned exponent (`0e1`), which RFC 8259 allows and `JSONSerialization` reads.
    /// Where the two disagree, the reader must read as `JSONSerialization` does.
    @Test func damagedDocumentsAreRefusedWhereFoundationRefusesThem() {
        var random = SeededRandom(seed: 7)
        var refused = 0, foundationDisagrees = 0
        for _ in 0..<3000 {
            var bytes = Array(random.text(of: random.value(depth: 0)).utf8)
            let at = random.int(0..<bytes.count)
            let noise: [UInt8] = Array("{}[],:\"\\-+.eE0123456789tfnul \n\u{7}x".utf8)
            switch random.int(0..<3) {
            case 0: bytes.remove(at: at)
            case 1: bytes.insert(noise[random.int(0..<noise.count)], at: at)
            default: bytes[at] = noise[random.int(0..<noise.count)]
            }
            let text = String(decoding: bytes, as: UTF8.self)
            let ours = try? JSONReader.parse(bytes)
            let theirs = foundation(text)
            if let ours, ours != theirs {
                #expect(ours == serialization(text), "read unlike both of Foundation's parsers: \(text)")
                foundationDisagrees += 1
            } else if ours == nil {
                refused += 1
            }
        }
        #expect(refused > 1000, "the damage should break most documents")
        #expect(foundationDisagrees < 30, "Foundation's parsers disagree only where said above")
    }

    @Test func ofAKeyGivenTwiceTheLastValueCounts() throws {
        let text = "{\"a\": 1, \"b\": {\"c\": true, \"c\": null}, \"a\": [2]}"
        let expected = JSONValue.object(["a": .array([.number(2)]), "b": .object(["c": .null])])
        #expect(try JSONReader.parse(text) == expected)
        #expect(serialization(text) == expected)
    }

    /// RFC 8259's `int exp`: a zero may take an exponent, signed or not.
    @Test func aZeroWithAnExponentIsZero() throws {
        for text in ["0e1", "0E1", "-0e1", "0e+1", "[0e-2]"] {
            let value = try JSONReader.parse(text)
            #expect(value == .number(0) || value == .array([.number(0)]), "\(text)")
            #expect(value == serialization(text), "\(text)")
        }
    }

    @Test func problemsNameTheirLineAndColumn() throws {
        func problem(_ text: String) -> JSONReader.Problem? {
            do { _ = try JSONReader.parse(text) } catch { return error }
            return nil
        }
        #expect(problem("{\"a\": 1,\n  \"b\": tru}") == .init(line: 2, column: 8, message: "unexpected 't' where a value was expected"))
        #expect(problem("[1, 2,]")?.column == 7)
        #expect(problem("[01]")?.message.contains("leading zeros") == true)
        #expect(problem("{\"a\": NaN}")?.column == 7)
        #expect(problem("[1e400]")?.message.contains("too large") == true)
        #expect(problem("\"\\ud800\"")?.message.contains("lone high surrogate") == true)
        #expect(problem("\"a\u{1}b\"")?.message.contains("control character") == true)
        #expect(problem("") != nil)
        #expect(problem("{} {}")?.column == 4)
        #expect(problem("[1] // note") != nil)
        #expect(try JSONReader.parse("\"\\ud83d\\ude00 \\u00e9\\n\"") == .string("😀 é\n"))
        #expect(try JSONReader.parse([0x22, 0xC3, 0xA9, 0x22]) == .string("é"))
        #expect(throws: JSONReader.Problem.self) { try JSONReader.parse([0x22, 0xC3, 0x28, 0x22]) }
    }

    /// The outside audit's finding: 20 elements nested 511 deep took 33.7 s through Foundation's
    /// decoder into `JSONValue`. Deeper than 64 is refused at once, and depth costs nothing extra.
    @Test func nestingDeeperThan64IsRefusedAndDepthCostsLinearTime() throws {
        let deep = String(repeating: "[", count: 511) + String(repeating: "]", count: 511)
        let body = "[" + Array(repeating: deep, count: 20).joined(separator: ",") + "]"
        let error = #expect(throws: JSONReader.Problem.self) { try JSONReader.parse(body) }
        #expect(error?.message == "arrays and objects nested deeper than 64")
        #expect(error?.column == 65)
        let sixtyFour = String(repeating: "{\"a\":", count: 63) + "[1]" + String(repeating: "}", count: 63)
        #expect(try JSONReader.parse(sixtyFour) != .null)
        #expect(throws: JSONReader.Problem.self) { try JSONReader.parse("[" + sixtyFour + "]") }
        #expect(throws: JSONReader.Problem.self) { try JSONReader.parse(String(repeating: "[", count: 100_000)) }
    }

    @Test func nonFiniteNumbersAreWrittenAsTextSoNothingIsLost() {
        let value: JSONValue = ["a": .number(.nan), "b": .number(.infinity), "c": .number(-.infinity), "d": 1.5]
        #expect(value.jsonText() == #"{"a":"nan","b":"inf","c":"-inf","d":1.5}"#)
    }
}

/// Generated JSON documents and strings, from a seeded generator (`SplitMix`), so a failure reproduces.
struct SeededRandom {
    var generator: SplitMix

    init(seed: UInt64) { generator = SplitMix(seed: seed) }

    mutating func next() -> UInt64 { generator.next() }

    mutating func int(_ range: Range<Int>) -> Int { range.lowerBound + Int(next() % UInt64(range.count)) }

    mutating func string() -> String {
        let pieces = ["a", "Z", "0", " ", "é", "😀", "\"", "\\", "/", "\n", "\t", "\u{1}", "\u{7F}", "ñ", "€", "key"]
        return (0..<int(0..<6)).map { _ in pieces[int(0..<pieces.count)] }.joined()
    }

    mutating func number() -> Double {
        switch int(0..<5) {
        case 0: return Double(int(-1000..<1000))
        case 1: return Double(int(-1_000_000..<1_000_000)) / 1000
        case 2: return Double(bitPattern: next() & 0x7FEF_FFFF_FFFF_FFFF | (next() & 0x8000_0000_0000_0000))
        case 3: return Double(Int64(bitPattern: next()) >> int(0..<40))
        default: return [0, 1e-7, 5e-324, 1.7976931348623157e308, 0.1, 123456789012345678].randomElement(using: &self)!
        }
    }

    mutating func value(depth: Int) -> JSONValue {
        switch depth > 4 ? int(0..<4) : int(0..<6) {
        case 0: return .null
        case 1: return .bool(int(0..<2) == 0)
        case 2: return .number(number())
        case 3: return .string(string())
        case 4: return .array((0..<int(0..<5)).map { _ in value(depth: depth + 1) })
        default:
            var o: [String: JSONValue] = [:]
            for _ in 0..<int(0..<5) { o[string()] = value(depth: depth + 1) }
            return .object(o)
        }
    }

    /// JSON text of `value`, with random whitespace and escapes where JSON allows them.
    mutating func text(of value: JSONValue) -> String {
        let space = ["", "", " ", "\n", "\t ", "\r\n"]
        func ws() -> String { space[int(0..<space.count)] }
        switch value {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .number(let n):
            if n.rounded() == n && abs(n) < 1e15 && int(0..<2) == 0 { return String(Int64(n)) }
            return "\(n)"
        case .string(let s):
            var out = "\""
            for scalar in s.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += int(0..<2) == 0 ? "\\n" : "\\u000a"
                case "\t": out += "\\t"
                case "/": out += int(0..<2) == 0 ? "/" : "\\/"
                default:
                    if scalar.value < 0x20 || int(0..<4) == 0 {
                        for unit in String(scalar).utf16 { out += String(format: "\\u%04x", unit) }
                    } else {
                        out.unicodeScalars.append(scalar)
                    }
                }
            }
            return out + "\""
        case .array(let items):
            return "[" + ws() + items.map { text(of: $0) }.joined(separator: ws() + "," + ws()) + ws() + "]"
        case .object(let fields):
            // In key order: a dictionary's own order changes from one process to the next, and the
            // text (and every draw after it) must follow from the seed alone.
            let parts = fields.sorted { $0.key < $1.key }.map { text(of: .string($0.key)) + ws() + ":" + ws() + text(of: $0.value) }
            return "{" + ws() + parts.joined(separator: "," + ws()) + ws() + "}"
        }
    }
}

extension SeededRandom: RandomNumberGenerator {}
