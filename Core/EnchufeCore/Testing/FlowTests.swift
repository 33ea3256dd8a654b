import Foundation
import Logging
import Synchronization

/// The outcome of one test case.
public struct FlowTestResult: Sendable {
    public var file: String
    public var name: String
    public var location: SourceLocation
    /// Empty when the case passed.
    public var failures: [String]
    public var passed: Bool { failures.isEmpty }
}

/// Runs flow tests (SPEC §8): the node under test, or the whole flow, on the real engine with an
/// in-memory store, virtual time and canned answers for connector calls — no network, no servers.
/// `enchufe test` prints the results; Swift tests call `run(paths:)` and look at them.
public struct FlowTests: Sendable {
    public var registry: NodeRegistry
    public var environment: [String: String]
    /// Real time a case may take before it fails (a source waiting for something other than time).
    public var timeout: Duration

    public init(registry: NodeRegistry, environment: [String: String] = ProcessInfo.processInfo.environment, timeout: Duration = .seconds(60)) {
        self.registry = registry
        self.environment = environment
        self.timeout = timeout
    }

    /// Test files for the paths: `*.test.yaml` files in folders (recursively) or given directly; a
    /// flow file given stands for its test file.
    public static func testFiles(in paths: [String]) throws -> [String] {
        let fm = FileManager.default
        return try FlowLoader.files(in: paths) { path, named in
            FlowLoader.isTestFile(path) || named
        }.flatMap { path -> [String] in
            if FlowLoader.isTestFile(path) { return [path] }
            let stem = (path as NSString).deletingPathExtension
            return [stem + ".test.yaml", stem + ".test.yml"].filter { fm.fileExists(atPath: $0) }
        }
    }

    /// Runs every case of every test file; `report` sees each result as it comes.
    public func run(paths: [String], report: (FlowTestResult) -> Void = { _ in }) async throws -> [FlowTestResult] {
        var results: [FlowTestResult] = []
        for file in try Self.testFiles(in: paths) {
            for result in await run(file: file) {
                report(result)
                results.append(result)
            }
        }
        return results
    }

    /// The cases of one test file. Problems with the file or its flow fail it as one result.
    public func run(file: String) async -> [FlowTestResult] {
        func broken(_ problems: [String]) -> [FlowTestResult] {
            [FlowTestResult(file: file, name: "(test file)", location: SourceLocation(file: file, line: 1, column: 1), failures: problems)]
        }
        guard let data = FileManager.default.contents(atPath: file) else { return broken(["cannot read \(file)"]) }
        var reader = FlowTestReader(file: file)
        let cases = reader.read(String(decoding: data, as: UTF8.self))
        if !reader.diagnostics.isEmpty { return broken(reader.diagnostics.map(\.description)) }

        let stem = file.replacingOccurrences(of: ".test.yaml", with: "").replacingOccurrences(of: ".test.yml", with: "")
        guard let flowFile = [stem + ".yaml", stem + ".yml"].first(where: FileManager.default.fileExists) else {
            return broken(["no flow file \(stem).yaml beside the test file"])
        }
        let set: FlowSet
        do {
            set = try FlowLoader(registry: registry, environment: environment).load(paths: [flowFile])
        } catch {
            return broken(["\(error)"])
        }
        guard set.errors.isEmpty, let flow = set.flows.first else {
            return broken(["the flow is not valid:"] + set.errors.map(\.description))
        }
        var results: [FlowTestResult] = []
        for test in cases {
            let failures = await run(test, flow: flow, testFile: file)
            results.append(FlowTestResult(file: file, name: test.name, location: test.location, failures: failures))
        }
        return results
    }

    // MARK: One case

    static let inputNode = "test-input"
    /// The port under which flow tests record what reaches a sink that would talk to a server.
    static let sinkInputPort = "in"

    /// Runs one case; returns what went wrong (nothing: it passed).
    func run(_ test: FlowTestCase, flow: FlowDefinition, testFile: String) async -> [String] {
        let recorder = CaptureRecorder()
        let built: TestFlow
        do {
            built = try TestFlow(test: test, flow: flow, registry: registry)
        } catch {
            return ["\(test.location): \(error)"]
        }
        var registry = self.registry
        registry.register(CaptureRecorder.injectorSpec(test.input, standsFor: built.standsFor, registry: self.registry))
        registry.register(recorder.captureSpec(wrapping: built.recordedSinks, registry: self.registry))

        var answers: [String: Data] = [:]
        let base = URL(fileURLWithPath: testFile).deletingLastPathComponent()
        for (key, path) in test.fixtures {
            let url = path.hasPrefix("/") ? URL(fileURLWithPath: path) : base.appendingPathComponent(path)
            guard let data = FileManager.default.contents(atPath: url.path) else {
                return ["\(test.location): fixture file not found: \(url.path)"]
            }
            answers[key] = data
        }

        let store: SQLiteStore
        do {
            store = try SQLiteStore(path: ":memory:")
            try await store.migrate()
        } catch {
            return ["\(test.location): could not open the test store: \(error)"]
        }
        let start = test.now ?? Date()
        let clock = FlowTestClock(start: start, end: start.addingTimeInterval(test.runFor.seconds))
        let log = CapturedLog()
        let logger = Logger(label: "enchufe.test") { _ in CapturedLog.Handler(log: log) }
        let environment = EngineEnvironment(
            store: store, clock: clock, logger: logger, cannedAnswers: CannedAnswers(answers))
        let hub = Hub(flows: [built.definition], registry: registry, environment: environment)
        if !hub.notStarted.isEmpty { return hub.notStarted.map { "\(test.location): \($0.description)" } }

        let sources = built.definition.nodes.filter { registry.spec($0.type)?.kind == .source }.count
        let timedOut = await run(hub, clock: clock, sources: sources)

        var failures: [String] = []
        if timedOut {
            failures.append("\(test.location): the flow did not go quiet within \(DurationText.format(timeout)) (is a source waiting for something other than time?)")
        }
        for expectation in test.expectations {
            let actual: [JSONValue]
            switch expectation.target {
            case .port(let node, let port):
                actual = recorder.messages(node: node ?? "", port: port)
            case .storedReadings:
                actual = ((try? await store.changes(tenant: flow.tenant, after: 0, limit: 1_000_000)) ?? []).map(\.reading.json)
            case .deadLetters:
                actual = ((try? await store.deadLetters(tenant: nil, limit: 100_000)) ?? []).map {
                    [
                        "flow": .string($0.flow), "node": .string($0.node), "error": .string($0.error), "message": $0.message,
                        "attempts": .number(Double($0.attempts)),
                    ]
                }
            }
            failures += expectation.check(actual).map { "\(expectation.location): \($0)" }
        }
        if !failures.isEmpty { failures += log.lines.map { "  log: \($0)" } }
        try? await store.close()
        return failures
    }

    /// Runs the hub until its sources have all parked or ended and what they sent has drained.
    /// Returns whether it had to be stopped by the timeout instead.
    private func run(_ hub: Hub, clock: FlowTestClock, sources: Int) async -> Bool {
        enum Event { case drained, quiet, timedOut }
        return await withTaskGroup(of: Event.self) { group in
            group.addTask {
                await hub.runFlows()
                return .drained
            }
            group.addTask {
                await clock.waitUntilQuiet(sources: sources)
                return .quiet
            }
            group.addTask {
                do { try await Task.sleep(for: timeout) } catch { return .drained }
                return .timedOut
            }
            var timedOut = false
            for await event in group {
                switch event {
                case .quiet: hub.stop()
                case .timedOut:
                    timedOut = true
                    hub.stop()
                case .drained:
                    group.cancelAll()
                    return timedOut
                }
            }
            return timedOut
        }
    }
}

/// The flow a case runs: the node under test (or the whole flow), with a source standing in for the
/// input and capture sinks on the outputs the expectations look at.
struct TestFlow {
    let definition: FlowDefinition
    /// The source the case's input stands for, if any.
    var standsFor: NodeDefinition?
    /// Sinks that would talk to a server, by id: flow tests record what they would send.
    var recordedSinks: [String: NodeDefinition] = [:]

    struct Problem: Error, CustomStringConvertible {
        var description: String
    }

    init(test: FlowTestCase, flow: FlowDefinition, registry: NodeRegistry) throws {
        func isSource(_ node: NodeDefinition) -> Bool { registry.spec(node.type)?.kind == .source }
        let here = flow.location
        var nodes: [NodeDefinition]
        var inputTargets: [WireTarget] = []
        if let id = test.node {
            guard let node = flow.node(id) else {
                throw Problem(description: "no node '\(id)' in flow '\(flow.id)'\(Suggestion.hint(for: id, among: flow.nodes.map(\.id)))")
            }
            if isSource(node), !test.input.isEmpty { throw Problem(description: "node '\(id)' is a source: it takes no input") }
            var isolated = node
            isolated.wires = [:]
            nodes = [isolated]
            if !isSource(node) { inputTargets = [WireTarget(node: id, location: here)] }
        } else {
            nodes = flow.nodes
            if !test.input.isEmpty {
                let sources = flow.nodes.filter(isSource)
                let replaced: NodeDefinition
                if let at = test.at {
                    guard let node = flow.node(at), isSource(node) else {
                        throw Problem(description: "'at: \(at)' must name a source of flow '\(flow.id)' (\(sources.map(\.id).joined(separator: ", ")))")
                    }
                    replaced = node
                } else if sources.count == 1 {
                    replaced = sources[0]
                } else {
                    throw Problem(description: "say which source the input stands in for, with 'at:' (one of \(sources.map(\.id).joined(separator: ", ")))")
                }
                nodes.removeAll { $0.id == replaced.id }
                inputTargets = replaced.wires[NodeDefinition.outPort] ?? []
                standsFor = replaced
            }
        }
        // Nodes that would reach a server: sinks record what reaches them (port `in`), sources do not run.
        for i in nodes.indices.reversed() {
            guard let spec = registry.spec(nodes[i].type), spec.external else { continue }
            if spec.kind == .source {
                nodes.remove(at: i)
            } else if spec.kind == .sink {
                recordedSinks[nodes[i].id] = nodes[i]
                nodes[i].type = CaptureRecorder.captureType
                nodes[i].options = NodeOptions(values: ["node": .string(nodes[i].id), "port": .string(FlowTests.sinkInputPort)])
            }
        }
        // Capture what the expectations look at, and every output of a node tested alone.
        var captured = Set<[String]>()
        for expectation in test.expectations {
            if case .port(let node?, let port) = expectation.target {
                guard flow.node(node) != nil else {
                    throw Problem(description: "the expectation names node '\(node)', which flow '\(flow.id)' does not have")
                }
                captured.insert([node, port])
            }
        }
        if let id = test.node, let node = flow.node(id) {
            for port in node.wires.keys where port != NodeDefinition.errorsPort { captured.insert([id, port]) }
        }
        for pair in captured.sorted(by: { $0.joined() < $1.joined() }) where recordedSinks[pair[0]] == nil {
            let capture = "capture-\(pair[0])-\(pair[1])"
            guard let i = nodes.firstIndex(where: { $0.id == pair[0] }) else { continue }
            nodes[i].wires[pair[1], default: []].append(WireTarget(node: capture, location: here))
            nodes.append(NodeDefinition(
                id: capture, type: CaptureRecorder.captureType, location: here,
                options: NodeOptions(values: [CaptureRecorder.captureNode.name: .string(pair[0]), CaptureRecorder.capturePort.name: .string(pair[1])]), wires: [:],
                retry: RetryPolicy(attempts: 1), queueSize: flow.queueSize))
        }
        if !inputTargets.isEmpty || test.node == nil && !test.input.isEmpty {
            nodes.append(NodeDefinition(
                id: FlowTests.inputNode, type: CaptureRecorder.injectorType, location: here, options: NodeOptions(),
                wires: [NodeDefinition.outPort: inputTargets], retry: RetryPolicy(attempts: 1), queueSize: flow.queueSize))
        }
        var definition = flow
        definition.nodes = nodes
        self.definition = definition
    }
}

/// Test-only node types: the source that sends a case's input, and the sinks that record outputs.
final class CaptureRecorder: Sendable {
    static let captureType = "test.capture"
    /// The node and port whose messages a capture node records.
    static let captureNode = RequiredOptionKey<String>("node", doc: "The node whose messages are recorded.")
    static let capturePort = RequiredOptionKey<String>("port", doc: "Its port.")
    static let injectorType = "test.input"

    private let recorded = Mutex<[String: [JSONValue]]>([:])

    func messages(node: String, port: String) -> [JSONValue] {
        recorded.withLock { $0["\(node)/\(port)"] ?? [] }
    }

    /// The capture sink; for a sink in `wrapping` (one that would talk to a server) it records what
    /// that sink would send, when the sink can say (`RecordingSink`), else the message reaching it.
    func captureSpec(wrapping: [String: NodeDefinition], registry: NodeRegistry) -> NodeSpec {
        NodeSpec(
            type: Self.captureType, kind: .sink, summary: "Records messages for a flow test", options: [Self.captureNode.spec, Self.capturePort.spec],
            example: "",
            make: { context in
                let node = try context.options.required(Self.captureNode)
                let key = "\(node)/\(try context.options.required(Self.capturePort))"
                var record: (@Sendable (Message) throws -> JSONValue)? = nil
                if let original = wrapping[node], let make = registry.spec(original.type)?.make {
                    var originalContext = context
                    originalContext.options = original.options
                    if case .sink(let sink as any RecordingSink) = try make(originalContext) { record = sink.testRecord }
                }
                return .sink(Capture(key: key, recorder: self, record: record))
            })
    }

    struct Capture: SinkNode {
        let key: String
        let recorder: CaptureRecorder
        let record: (@Sendable (Message) throws -> JSONValue)?
        let batching = Batching.single
        func write(_ batch: [Message], _ context: NodeContext) async throws {
            let values = try batch.map { message in try record?(message) ?? message.json }
            recorder.recorded.withLock { $0[key, default: []] += values }
        }
    }

    /// The source of a case's input; when the input stands for a source that can convert it
    /// (`TestInputSource`), each input goes through that conversion first.
    static func injectorSpec(_ input: [Message], standsFor: NodeDefinition?, registry: NodeRegistry) -> NodeSpec {
        NodeSpec(
            type: injectorType, kind: .source, summary: "Sends a flow test's input", options: [], example: "",
            make: { context in
                var convert: (@Sendable (Message, Date) throws -> Message)? = nil
                if let standsFor, let make = registry.spec(standsFor.type)?.make {
                    var originalContext = context
                    originalContext.node = standsFor.id
                    originalContext.options = standsFor.options
                    if case .source(let source as any TestInputSource) = try make(originalContext) {
                        convert = source.message(fromTestInput:at:)
                    }
                }
                return .source(Injector(input: input, convert: convert, standsFor: standsFor?.id))
            })
    }

    struct Injector: SourceNode {
        let input: [Message]
        let convert: (@Sendable (Message, Date) throws -> Message)?
        let standsFor: String?

        func run(_ context: SourceContext) async throws {
            for message in input {
                guard let convert else {
                    try await context.emit(message)
                    continue
                }
                var converted: Message
                do {
                    converted = try convert(message, context.clock.now())
                    for i in converted.readings.indices where converted.readings[i].source.isEmpty {
                        converted.readings[i].source = "\(context.node.flow)/\(standsFor ?? context.node.node)"
                    }
                } catch {
                    // As the source does with what it cannot read: a dead letter with the reason.
                    try await context.node.deadLetter(message.json, reason: "\(error)", node: standsFor)
                    continue
                }
                try await context.emit(converted)
            }
        }
    }
}

/// Log lines of a test run, shown when a case fails (and read by tests that check what is logged).
public final class CapturedLog: Sendable {
    private let store = Mutex<[String]>([])
    public var lines: [String] { store.withLock { $0 } }
    func append(_ line: String) { store.withLock { $0.append(line) } }

    public init() {}

    /// A logger writing here, from `level` up.
    public func logger(level: Logger.Level = .trace) -> Logger {
        Logger(label: "test") { _ in Handler(log: self, logLevel: level) }
    }

    /// A handler writing here (a value, like every log handler, so each node's metadata is its own).
    struct Handler: LogHandler {
        let log: CapturedLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .info

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let node = (event.metadata?["node"] ?? metadata["node"]).map { "\($0): " } ?? ""
            log.append("\(event.level) \(node)\(event.message)")
        }
    }
}
