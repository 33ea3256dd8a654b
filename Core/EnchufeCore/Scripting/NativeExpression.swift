import Foundation

/// A Lua expression simple enough to evaluate without Lua: numbers and booleans, `msg.payload`
/// paths, arithmetic (`+ - * / // % ^`, unary `-`), comparisons, `and`, `or`, `not` and
/// parentheses — what most `map` values and `filter` conditions are (`msg.payload.wh / 1000`,
/// `msg.payload.w > 0`). A call into Lua costs more than such an expression does, the `msg` table
/// most of all.
///
/// It gives Lua 5.4's answer or none: values follow Lua's rules (integers and floats kept apart,
/// integer arithmetic wrapping, floor division and modulo as Lua rounds them, exact comparison of
/// integers with floats), and whenever an operand is not a number or boolean (a string, `null`,
/// a field that is missing), an operation would raise an error in Lua (dividing an integer by
/// zero, comparing booleans), or the result is one JSON cannot hold, `evaluate` answers nil and the
/// caller asks Lua, which gives the same value or the error it always gave. Checked against Lua on
/// generated expressions (`NativeExpressionTests`).
struct NativeExpression: Sendable {
    /// A Lua value the expression can hold.
    enum Value: Sendable, Equatable {
        case int(Int64)
        case float(Double)
        case bool(Bool)

        /// A JSON number as the `msg` table holds it (`LuaEngine.push`, by the same `intValue` rule).
        init(_ n: Double) {
            self = JSONValue.number(n).intValue.map { .int(Int64($0)) } ?? .float(n)
        }

        var isTrue: Bool { if case .bool(let b) = self { b } else { true } }

        var json: JSONValue? {
            switch self {
            case .int(let i): .number(Double(i))
            case .float(let f): f.isFinite ? .number(f) : nil
            case .bool(let b): .bool(b)
            }
        }
    }

    indirect enum Node: Sendable {
        case constant(Value)
        case payload([JSONValue.PathKey])
        case negate(Node)
        case not(Node)
        case binary(Operator, Node, Node)
        case and(Node, Node)
        case or(Node, Node)
    }

    enum Operator: String, Sendable, CaseIterable {
        case add = "+", subtract = "-", multiply = "*", divide = "/", floorDivide = "//", modulo = "%", power = "^"
        case equal = "==", notEqual = "~=", less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">="
        case and, or

        /// Lua 5.4's priorities (left, right): `^` binds right, above the unary operators (12).
        var priority: (left: Int, right: Int) {
            switch self {
            case .or: (1, 1)
            case .and: (2, 2)
            case .equal, .notEqual, .less, .lessOrEqual, .greater, .greaterOrEqual: (3, 3)
            case .add, .subtract: (10, 10)
            case .multiply, .divide, .floorDivide, .modulo: (11, 11)
            case .power: (14, 13)
            }
        }
    }

    let root: Node

    /// The expression, if all of it is within what this evaluator knows; nil otherwise.
    init?(_ text: String) {
        guard let tokens = Self.tokens(text) else { return nil }
        var parser = Parser(tokens: tokens)
        guard let root = parser.expression(limit: 0), parser.atEnd else { return nil }
        self.root = root
    }

    /// Lua's value for `message` as JSON, or nil when Lua must be asked.
    func evaluate(_ message: Message) -> JSONValue? {
        Self.value(root, message.payload)?.json
    }

    // MARK: Evaluation

    static func value(_ node: Node, _ payload: JSONValue) -> Value? {
        switch node {
        case .constant(let v):
            return v
        case .payload(let keys):
            switch payload.value(at: keys) {
            case .number(let n)?: return Value(n)
            case .bool(let b)?: return .bool(b)
            default: return nil  // nil, null, a string or a table: Lua's rules for them are Lua's
            }
        case .negate(let operand):
            switch value(operand, payload) {
            case .int(let i)?: return .int(0 &- i)
            case .float(let f)?: return .float(-f)
            default: return nil
            }
        case .not(let operand):
            return value(operand, payload).map { .bool(!$0.isTrue) }
        case .and(let l, let r):
            guard let left = value(l, payload) else { return nil }
            return left.isTrue ? value(r, payload) : left
        case .or(let l, let r):
            guard let left = value(l, payload) else { return nil }
            return left.isTrue ? left : value(r, payload)
        case .binary(let op, let l, let r):
            guard let left = value(l, payload), let right = value(r, payload) else { return nil }
            return apply(op, left, right)
        }
    }

    static func apply(_ op: Operator, _ a: Value, _ b: Value) -> Value? {
        switch op {
        case .equal: return equal(a, b).map(Value.bool)
        case .notEqual: return equal(a, b).map { .bool(!$0) }
        case .less: return compare(a, b).map { .bool($0 == -1) }
        case .lessOrEqual: return compare(a, b).map { .bool($0 == -1 || $0 == 0) }
        case .greater: return compare(a, b).map { .bool($0 == 1) }
        case .greaterOrEqual: return compare(a, b).map { .bool($0 == 1 || $0 == 0) }
        default: break
        }
        if case .int(let x) = a, case .int(let y) = b {
            switch op {
            case .add: return .int(x &+ y)
            case .subtract: return .int(x &- y)
            case .multiply: return .int(x &* y)
            case .floorDivide:
                if y == 0 { return nil }  // Lua: "attempt to perform 'n//0'"
                if y == -1 { return .int(0 &- x) }
                var q = x / y
                if (x ^ y) < 0 && x % y != 0 { q -= 1 }
                return .int(q)
            case .modulo:
                if y == 0 { return nil }  // Lua: "attempt to perform 'n%%0'"
                if y == -1 { return .int(0) }
                var r = x % y
                if r != 0 && (r ^ y) < 0 { r += y }
                return .int(r)
            default: break
            }
        }
        guard let x = a.number, let y = b.number else { return nil }  // arithmetic on a boolean: Lua's error
        switch op {
        case .add: return .float(x + y)
        case .subtract: return .float(x - y)
        case .multiply: return .float(x * y)
        case .divide: return .float(x / y)
        case .power: return .float(pow(x, y))
        case .floorDivide: return .float((x / y).rounded(.down))
        case .modulo:
            var m = fmod(x, y)
            if m > 0 ? y < 0 : (m < 0 && y > 0) { m += y }  // the result takes the divisor's sign
            return .float(m)
        default: return nil
        }
    }

    /// Lua's `==` for these values: numbers by their mathematical value, booleans by theirs, a
    /// number never equal to a boolean. Nil when an integer and a float are too large to compare
    /// exactly here.
    static func equal(_ a: Value, _ b: Value) -> Bool? {
        switch (a, b) {
        case (.bool(let x), .bool(let y)): return x == y
        case (.bool, _), (_, .bool): return false
        default: return compare(a, b).map { $0 == 0 }
        }
    }

    /// -1, 0 or 1 (NaN compares as none of them: 2); nil for booleans (Lua's error) and for an
    /// integer beyond 2^53 against a float.
    static func compare(_ a: Value, _ b: Value) -> Int? {
        switch (a, b) {
        case (.int(let x), .int(let y)): return x < y ? -1 : (x == y ? 0 : 1)
        case (.int(let i), .float), (.float, .int(let i)):
            guard i.magnitude <= 1 << 53 else { return nil }
            fallthrough
        case (.float, .float):
            guard let x = a.number, let y = b.number else { return nil }
            return x < y ? -1 : (x == y ? 0 : (x > y ? 1 : 2))
        default: return nil
        }
    }

    // MARK: Reading the text

    enum Token: Equatable {
        case number(Value)
        case word(String)
        case symbol(String)
    }

    /// The tokens of the text, or nil at anything outside the subset (strings, long brackets,
    /// comments, hexadecimal numbers, `..`, `#`, bit operators).
    static func tokens(_ text: String) -> [Token]? {
        let bytes = Array(text.utf8)
        var tokens: [Token] = []
        var i = 0
        func isDigit(_ b: UInt8) -> Bool { b >= 48 && b <= 57 }
        func isLetter(_ b: UInt8) -> Bool { b == 95 || ((b | 0x20) >= 97 && (b | 0x20) <= 122) }
        while i < bytes.count {
            let b = bytes[i]
            if b == 32 || b == 9 || b == 10 || b == 13 {
                i += 1
            } else if isDigit(b) || (b == UInt8(ascii: ".") && i + 1 < bytes.count && isDigit(bytes[i + 1])) {
                let start = i
                var isFloat = false
                while i < bytes.count, isDigit(bytes[i]) || bytes[i] == UInt8(ascii: ".") {
                    if bytes[i] == UInt8(ascii: ".") { isFloat = true }
                    i += 1
                }
                if i < bytes.count, bytes[i] | 0x20 == UInt8(ascii: "e") {
                    isFloat = true
                    i += 1
                    if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
                    guard i < bytes.count, isDigit(bytes[i]) else { return nil }
                    while i < bytes.count, isDigit(bytes[i]) { i += 1 }
                }
                if i < bytes.count, isLetter(bytes[i]) || bytes[i] == UInt8(ascii: ".") { return nil }  // 0x1F, 1.5.2, 3k
                let literal = String(decoding: bytes[start..<i], as: UTF8.self)
                // Lua reads an integer literal too large for 64 bits as a float.
                if !isFloat, let n = Int64(literal) {
                    tokens.append(.number(.int(n)))
                } else if let f = Double(literal), f.isFinite {
                    tokens.append(.number(.float(f)))
                } else {
                    return nil
                }
            } else if isLetter(b) {
                let start = i
                while i < bytes.count, isLetter(bytes[i]) || isDigit(bytes[i]) { i += 1 }
                tokens.append(.word(String(decoding: bytes[start..<i], as: UTF8.self)))
            } else {
                let two = i + 1 < bytes.count ? String(decoding: bytes[i...(i + 1)], as: UTF8.self) : ""
                if ["//", "==", "~=", "<=", ">="].contains(two) {
                    tokens.append(.symbol(two))
                    i += 2
                } else if "+-*/%^<>().".utf8.contains(b) {
                    if b == UInt8(ascii: "."), i + 1 < bytes.count, bytes[i + 1] == UInt8(ascii: ".") { return nil }  // `..`
                    if b == UInt8(ascii: "-"), i + 1 < bytes.count, bytes[i + 1] == UInt8(ascii: "-") { return nil }  // a comment
                    tokens.append(.symbol(String(UnicodeScalar(b))))
                    i += 1
                } else {
                    return nil
                }
            }
        }
        return tokens
    }

    /// Lua's own expression grammar (`subexpr` in its parser), over the subset's tokens.
    struct Parser {
        let tokens: [Token]
        var at = 0

        var atEnd: Bool { at == tokens.count }

        mutating func expression(limit: Int) -> Node? {
            var left: Node
            if case .word("not")? = peek {
                at += 1
                guard let operand = expression(limit: 12) else { return nil }
                left = .not(operand)
            } else if case .symbol("-")? = peek {
                at += 1
                guard let operand = expression(limit: 12) else { return nil }
                left = .negate(operand)
            } else {
                guard let simple = simple() else { return nil }
                left = simple
            }
            while let op = binaryOperator, op.priority.left > limit {
                at += 1
                guard let right = expression(limit: op.priority.right) else { return nil }
                switch op {
                case .and: left = .and(left, right)
                case .or: left = .or(left, right)
                default: left = .binary(op, left, right)
                }
            }
            return left
        }

        private var peek: Token? { at < tokens.count ? tokens[at] : nil }

        private var binaryOperator: Operator? {
            switch peek {
            case .symbol(let s)?: Operator(rawValue: s)
            case .word("and")?: .and
            case .word("or")?: .or
            default: nil
            }
        }

        private mutating func simple() -> Node? {
            switch peek {
            case .number(let v)?:
                at += 1
                return .constant(v)
            case .word("true")?:
                at += 1
                return .constant(.bool(true))
            case .word("false")?:
                at += 1
                return .constant(.bool(false))
            case .symbol("(")?:
                at += 1
                guard let inner = expression(limit: 0), case .symbol(")")? = peek else { return nil }
                at += 1
                return inner
            case .word("msg")?:
                // msg.payload.NAME...: nothing else (msg.topic is a string; msg[k] and calls are Lua's).
                at += 1
                var names: [String] = []
                while case .symbol(".")? = peek {
                    at += 1
                    guard case .word(let name)? = peek, !Self.keywords.contains(name) else { return nil }
                    names.append(name)
                    at += 1
                }
                guard names.first == "payload" else { return nil }
                return .payload(names.dropFirst().map { JSONValue.PathKey($0) })
            default:
                return nil
            }
        }

        static let keywords: Set<String> = [
            "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if", "in", "local", "nil", "not", "or",
            "repeat", "return", "then", "true", "until", "while",
        ]
    }
}

extension NativeExpression.Value {
    /// The value as a float, for arithmetic that mixes integers and floats; nil for a boolean.
    var number: Double? {
        switch self {
        case .int(let i): Double(i)
        case .float(let f): f
        case .bool: nil
        }
    }
}
