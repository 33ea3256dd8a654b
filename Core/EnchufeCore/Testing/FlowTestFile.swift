import Foundation
import Yams

/// One `NAME.test.yaml` file: test cases for the flow in `NAME.yaml` beside it (SPEC §8).
public struct FlowTestFile: Sendable {
    public var path: String
    /// The flow file the cases test.
    public var flowFile: String
    public var cases: [FlowTestCase]
}

public struct FlowTestCase: Sendable {
    public var name: String
    public var location: SourceLocation
    /// The node under test, or nil: the whole flow (`node: flow`).
    public var node: String?
    /// In a whole-flow test, the source the `input` messages stand in for.
    public var at: String?
    public var input: [Message]
    public var fixtures: [String: String]
    /// The time the test starts at (default: now).
    public var now: Date?
    /// Virtual time the sources run for; a source whose next turn is later stops there.
    public var runFor: Duration
    public var expectations: [FlowExpectation]
}

public struct FlowExpectation: Sendable {
    public enum Target: Sendable, Equatable {
        /// Messages a node sent on a port.
        case port(node: String?, port: String)
        /// Readings in the store after the run.
        case storedReadings
        /// Dead letters in the store after the run.
        case deadLetters
    }

    public var location: SourceLocation
    public var target: Target
    public var count: Int?
    /// Exactly these messages, in order (each compared as a subset: keys not given are not checked).
    public var equals: [JSONValue]?
    /// Each of these matches some message (as a subset).
    public var contains: [JSONValue]?
    /// Only the messages matching this (as a subset) are looked at.
    public var filter: JSONValue?
}

/// Reads test files, reporting every problem with file:line:col like flow files.
struct FlowTestReader {
    let file: String
    private(set) var diagnostics: [Diagnostic] = []

    init(file: String) { self.file = file }

    static let caseKeys = ["name", "node", "at", "input", "fixtures", "now", "run_for", "expect"]
    static let expectationKeys = ["port", "node", "stored", "where", "count", "equals", "contains"]

    mutating func read(_ text: String) -> [FlowTestCase] {
        let root: Yams.Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            diagnostics.append(Diagnostic(SourceLocation(file: file, line: 1, column: 1), "invalid YAML: \(error)"))
            return []
        }
        guard let mapping = root?.mapping, let tests = mapping["tests"], let list = tests.sequence else {
            problem(root, "a test file is a mapping with a list 'tests:'")
            return []
        }
        for (key, _) in mapping where key.string != "tests" {
            problem(key, "unknown key '\(key.string ?? "")' in a test file (only 'tests')")
        }
        var cases: [FlowTestCase] = []
        for item in list { if let c = readCase(item) { cases.append(c) } }
        return cases
    }

    private mutating func readCase(_ node: Yams.Node) -> FlowTestCase? {
        guard let mapping = node.mapping else {
            problem(node, "a test case is a mapping with name, node, input and expect")
            return nil
        }
        checkKeys(mapping, allowed: Self.caseKeys, what: "test case")
        guard let name = mapping["name"]?.string else {
            problem(node, "a test case needs a 'name'")
            return nil
        }
        guard let target = mapping["node"]?.string else {
            problem(node, "test '\(name)' needs 'node': the id of the node under test, or 'flow'")
            return nil
        }
        var test = FlowTestCase(
            name: name, location: location(node), node: target == "flow" ? nil : target, at: mapping["at"]?.string,
            input: [], fixtures: [:], now: nil, runFor: .zero, expectations: [])
        if let input = mapping["input"] {
            let items = input.sequence.map(Array.init) ?? [input]
            for item in items {
                let value = Self.json(item)
                guard case .object(let fields) = value, Set(fields.keys).isSubset(of: LuaEngine.messageKeys) else {
                    problem(item, "an input message is a mapping of payload, topic, attributes and readings")
                    continue
                }
                let message = Message(json: value)
                if let readings = fields["readings"]?.arrayValue, readings.count != message.readings.count {
                    problem(item, "a reading needs series, quantity, ts (ISO-8601) and value")
                }
                test.input.append(message)
            }
        }
        if let fixtures = mapping["fixtures"] {
            guard let map = fixtures.mapping else {
                problem(fixtures, "'fixtures' maps a connector call (node id, node type or URL path) to a file")
                return nil
            }
            for (key, value) in map {
                guard let k = key.string, let v = value.string else { continue }
                test.fixtures[k] = v
            }
        }
        if let now = mapping["now"] {
            if let date = now.string.flatMap(ISO8601.date) { test.now = date } else { problem(now, "'now' must be an ISO-8601 instant") }
        }
        if let runFor = mapping["run_for"] {
            do { test.runFor = try DurationText.parse(runFor.string ?? "") } catch { problem(runFor, "'run_for': \(error)") }
        }
        guard let expect = mapping["expect"]?.sequence, !expect.isEmpty else {
            problem(node, "test '\(name)' needs 'expect': a list of expectations")
            return nil
        }
        for item in expect { if let e = readExpectation(item, test: test) { test.expectations.append(e) } }
        return test
    }

    private mutating func readExpectation(_ node: Yams.Node, test: FlowTestCase) -> FlowExpectation? {
        guard let mapping = node.mapping else {
            problem(node, "an expectation is a mapping (port or stored, and count, equals or contains)")
            return nil
        }
        checkKeys(mapping, allowed: Self.expectationKeys, what: "expectation")
        let target: FlowExpectation.Target
        if let stored = mapping["stored"] {
            switch stored.string {
            case "readings": target = .storedReadings
            case "dead_letters": target = .deadLetters
            default:
                problem(stored, "'stored' is readings or dead_letters")
                return nil
            }
        } else {
            let node = mapping["node"]?.string ?? test.node
            if node == nil { problem(mapping["port"] ?? Yams.Node.mapping(mapping), "in a whole-flow test, say which node's output is expected with 'node'") }
            target = .port(node: node, port: mapping["port"]?.string ?? NodeDefinition.outPort)
        }
        var expectation = FlowExpectation(location: location(node), target: target)
        if let count = mapping["count"] {
            guard let n = count.string.flatMap(Int.init), n >= 0 else {
                problem(count, "'count' must be a whole number")
                return nil
            }
            expectation.count = n
        }
        if let filter = mapping["where"] { expectation.filter = Self.json(filter) }
        for key in ["equals", "contains"] {
            guard let value = mapping[key] else { continue }
            guard let list = value.sequence else {
                problem(value, "'\(key)' is a list of messages")
                continue
            }
            let items = list.map(Self.json)
            if key == "equals" { expectation.equals = items } else { expectation.contains = items }
        }
        if expectation.count == nil, expectation.equals == nil, expectation.contains == nil {
            problem(node, "an expectation needs count, equals or contains")
        }
        return expectation
    }

    private mutating func checkKeys(_ mapping: Yams.Node.Mapping, allowed: [String], what: String) {
        for (key, _) in mapping {
            guard let name = key.string, !allowed.contains(name) else { continue }
            problem(key, "unknown key '\(name)' in \(what)\(Suggestion.hint(for: name, among: allowed))")
        }
    }

    private mutating func problem(_ node: Yams.Node?, _ message: String) {
        diagnostics.append(Diagnostic(location(node), message))
    }

    private func location(_ node: Yams.Node?) -> SourceLocation {
        SourceLocation(file: file, line: node?.mark?.line ?? 1, column: node?.mark?.column ?? 1)
    }

    /// A YAML value as JSON, typed the way flow options are.
    static func json(_ node: Yams.Node) -> JSONValue {
        switch node {
        case .mapping(let mapping):
            var o: [String: JSONValue] = [:]
            for (key, value) in mapping { if let k = key.string { o[k] = json(value) } }
            return .object(o)
        case .sequence(let sequence):
            return .array(sequence.map(json))
        case .scalar(let scalar):
            return JSONValue(yamlScalar: scalar.string, plain: scalar.style == .plain)
        case .alias:
            return .null
        }
    }
}
