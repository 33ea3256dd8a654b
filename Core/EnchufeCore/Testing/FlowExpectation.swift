import Foundation

extension FlowExpectation {
    /// What is wrong with `actual` (the messages, readings or dead letters the expectation looks at).
    func check(_ all: [JSONValue]) -> [String] {
        var problems: [String] = []
        let actual = filter.map { f in all.filter { Self.matches($0, f, exact: false) } } ?? all
        var what: String
        switch target {
        case .port(let node, let port): what = "messages on \(node ?? "?")/\(port)"
        case .storedReadings: what = "stored readings"
        case .deadLetters: what = "dead letters"
        }
        if let filter { what += " where \(filter.jsonText())" }
        if let count, actual.count != count {
            problems.append("expected \(count) \(what), got \(actual.count)\(Self.sample(actual))")
        }
        if let equals {
            if equals.count != actual.count {
                if count == nil { problems.append("expected \(equals.count) \(what), got \(actual.count)\(Self.sample(actual))") }
            } else {
                for (i, (want, got)) in zip(equals, actual).enumerated() where !Self.matches(got, want, exact: true) {
                    problems.append("\(what) #\(i + 1) is \(got.jsonText()), expected \(want.jsonText())")
                }
            }
        }
        for want in contains ?? [] where !actual.contains(where: { Self.matches($0, want, exact: false) }) {
            problems.append("no \(what) matches \(want.jsonText())\(Self.sample(actual))")
        }
        return problems
    }

    private static func sample(_ actual: [JSONValue]) -> String {
        guard !actual.isEmpty else { return "" }
        let shown = actual.prefix(3).map { text in
            let json = text.jsonText()
            return json.count > 240 ? json.prefix(240) + "…" : json
        }.joined(separator: ", ")
        return ": [\(shown)\(actual.count > 3 ? ", …" : "")]"
    }

    /// Whether `actual` matches `expected`: with `exact`, the same value; otherwise every key
    /// `expected` gives matches (others are not looked at). Numbers match to 1e-9 (relative), and
    /// two ISO-8601 texts with offsets match when they are the same instant.
    static func matches(_ actual: JSONValue, _ expected: JSONValue, exact: Bool) -> Bool {
        switch (actual, expected) {
        case (.number(let a), .number(let e)):
            return abs(a - e) <= 1e-9 * max(1, abs(e))
        case (.string(let a), .string(let e)):
            if a == e { return true }
            guard InstantFormat.hasOffset(a), InstantFormat.hasOffset(e), let x = ISO8601.date(a), let y = ISO8601.date(e) else { return false }
            return abs(x.timeIntervalSince(y)) < 0.0005
        case (.array(let a), .array(let e)):
            return a.count == e.count && zip(a, e).allSatisfy { matches($0, $1, exact: exact) }
        case (.object(let a), .object(let e)):
            if exact, Set(a.keys) != Set(e.keys) { return false }
            return e.allSatisfy { key, value in matches(a[key] ?? .null, value, exact: exact) }
        default:
            return actual == expected
        }
    }
}
