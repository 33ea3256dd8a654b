import EnchufeCore
import Foundation
import Logging
import Synchronization
import Testing

/// What happened to a flow's nodes, in order.
final class LifecycleLog: Sendable {
    let events = Mutex<[String]>([])
    func add(_ event: String) { events.withLock { $0.append(event) } }
    var all: [String] { events.withLock { $0 } }

    func first(_ event: String) -> Int? { all.firstIndex(of: event) }
    func last(_ event: String) -> Int? { all.lastIndex(of: event) }
}

struct LoggingSource: SourceNode {
    let log: LifecycleLog
    func run(_ context: SourceContext) async throws {
        for i in 0..<3 {
            log.add("source emits")
            try await context.emit(Message(payload: .number(Double(i))))
        }
    }
}

struct LoggingTransform: TransformNode {
    let name: String
    let log: LifecycleLog
    func start(_ context: NodeContext) async throws { log.add("\(name) start") }
    func close(_ context: NodeContext) async throws { log.add("\(name) close") }
    func process(_ message: Message, _ context: NodeContext) async throws -> [Output] {
        log.add("\(name) process")
        return [.out(message)]
    }
}

struct LoggingSink: SinkNode {
    let name: String
    let log: LifecycleLog
    let refuseStart: Bool
    var batching: Batching { Batching(size: 1, flushInterval: .zero) }
    func start(_ context: NodeContext) async throws {
        log.add("\(name) start")
        if refuseStart { throw PermanentError("no such database") }
    }
    func close(_ context: NodeContext) async throws { log.add("\(name) close") }
    func write(_ batch: [Message], _ context: NodeContext) async throws {
        for _ in batch { log.add("\(name) write") }
    }
}

@Suite struct FlowLifecycleTests {
    func hub(_ log: LifecycleLog, sinkRefusesStart: Bool = false) async throws -> Hub {
        let specs = [
            NodeSpec(type: "test.source", kind: .source, summary: "three messages", options: [], example: "",
                     make: { _ in .source(LoggingSource(log: log)) }),
            NodeSpec(type: "test.transform", kind: .transform, summary: "passes messages on", options: [], example: "",
                     make: { c in .transform(LoggingTransform(name: c.node, log: log)) }),
            NodeSpec(type: "test.sink", kind: .sink, summary: "takes messages", options: [], example: "",
                     make: { c in .sink(LoggingSink(name: c.node, log: log, refuseStart: sinkRefusesStart)) }),
        ]
        let registry = NodeRegistry(CoreNodes.specs + specs)
        let yaml = """
            flow: lifecycle
            nodes:
              - { id: source, type: test.source, to: [first] }
              - { id: first, type: test.transform, to: [second] }
              - { id: second, type: test.transform, to: [sink] }
              - { id: sink, type: test.sink }
            """
        let (flow, diagnostics) = FlowLoader(registry: registry, environment: [:]).load(text: yaml, file: "lifecycle.yaml")
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        let store = try SQLiteStore(url: "sqlite::memory:")
        try await store.migrate()
        let environment = EngineEnvironment(store: store, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        return Hub(flows: [try #require(flow)], registry: registry, environment: environment)
    }

    @Test func transformsAndSinksStartBeforeAnySourceRunsAndCloseInWiringOrderAfterTheirLastMessage() async throws {
        let log = LifecycleLog()
        let hub = try await hub(log)
        await hub.runFlows()

        let events = log.all
        #expect(events.filter { $0 == "sink write" }.count == 3, "\(events)")
        let firstEmit = try #require(log.first("source emits"))
        for node in ["first", "second", "sink"] {
            #expect(try #require(log.first("\(node) start")) < firstEmit, "\(node) started before the source ran: \(events)")
            #expect(events.filter { $0 == "\(node) start" }.count == 1 && events.filter { $0 == "\(node) close" }.count == 1, "\(events)")
        }
        // Each node closes after its own last message, and before the node it feeds closes.
        let firstClose = try #require(log.first("first close")), secondClose = try #require(log.first("second close"))
        let sinkClose = try #require(log.first("sink close"))
        #expect(try #require(log.last("first process")) < firstClose)
        #expect(try #require(log.last("second process")) < secondClose)
        #expect(try #require(log.last("sink write")) < sinkClose)
        #expect(firstClose < secondClose && secondClose < sinkClose, "\(events)")
    }

    @Test func aNodeThatCannotStartKeepsItsFlowFromRunningAndThoseStartedAreClosedAgain() async throws {
        let log = LifecycleLog()
        let hub = try await hub(log, sinkRefusesStart: true)
        await hub.runFlows()

        #expect(log.all == ["first start", "second start", "sink start", "second close", "first close"])
        let sink = try #require(hub.status(tenant: nil).flows.first?.nodes.first { $0.id == "sink" })
        #expect(sink.status.lastError == "could not start: no such database")
        #expect(sink.status.state == .stopped)
    }
}
