@testable import EnchufeCore
import Foundation
import Logging
import Synchronization
import Testing

/// Test nodes whose behaviour each test sets through a shared `Probe`.
final class Probe: Sendable {
    struct State {
        var emitted = 0
        var outcomes: [DeliveryOutcome] = []
        var written: [JSONValue] = []
        var failuresLeft = 0
        var attempts = 0
        var sinkBlocked = false
        var failAsUnavailable = false
        var gateWaiters: [CheckedContinuation<Void, Never>] = []
        var batchSizes: [Int] = []
    }

    let state = Mutex(State())
    let total: Int

    init(total: Int = 1, failures: Int = 0, blockSink: Bool = false, unavailable: Bool = false) {
        self.total = total
        state.withLock {
            $0.failuresLeft = failures
            $0.failAsUnavailable = unavailable
            $0.sinkBlocked = blockSink
        }
    }

    var emitted: Int { state.withLock { $0.emitted } }
    var written: [JSONValue] { state.withLock { $0.written } }
    var outcomes: [DeliveryOutcome] { state.withLock { $0.outcomes } }
    var attempts: Int { state.withLock { $0.attempts } }

    func openGate() {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.sinkBlocked = false
            defer { s.gateWaiters = [] }
            return s.gateWaiters
        }
        for w in waiters { w.resume() }
    }

    func waitAtGate() async {
        await withCheckedContinuation { c in
            let open = state.withLock { s -> Bool in
                if !s.sinkBlocked { return true }
                s.gateWaiters.append(c)
                return false
            }
            if open { c.resume() }
        }
    }

    /// Yields until `condition` holds (bounded, so a broken engine fails the test instead of hanging).
    func until(_ condition: @Sendable () -> Bool) async -> Bool {
        for _ in 0..<200_000 {
            if condition() { return true }
            await Task.yield()
        }
        return condition()
    }

    var specs: [NodeSpec] {
        [
            NodeSpec(type: "test.source", kind: .source, summary: "emits probe.total messages", options: [], example: "",
                     make: { _ in .source(CountingSource(probe: self)) }),
            NodeSpec(type: "test.burst", kind: .source, summary: "emits probe.total messages as one burst", options: [], example: "",
                     make: { _ in .source(BurstSource(probe: self)) }),
            NodeSpec(type: "test.batcher", kind: .transform, summary: "multiplies n by 10, a batch at a time; cannot take n = 13", options: [], example: "",
                     make: { _ in .transform(TimesTen(probe: self)) }),
            NodeSpec(type: "test.flaky", kind: .transform, summary: "fails probe.failuresLeft times", options: [], example: "",
                     make: { _ in .transform(FlakyTransform(probe: self)) }),
            NodeSpec(type: "test.sink", kind: .sink, summary: "records, waiting at the gate", options: [
                OptionSpec("fail_on", .string, doc: "payload value that makes the write fail"),
            ], example: "", make: { c in .sink(RecordingSink(probe: self, failOn: c.options.string("fail_on"))) }),
        ]
    }
}

struct CountingSource: SourceNode {
    let probe: Probe
    func run(_ context: SourceContext) async throws {
        for i in 0..<probe.total {
            let delivery = try await context.emit(Message(payload: ["n": .number(Double(i))]))
            probe.state.withLock { $0.emitted += 1 }
            delivery.onSettled { outcome in probe.state.withLock { $0.outcomes.append(outcome) } }
        }
    }
}

/// Sends all its messages at once, each its own input (as a burst of MQTT messages).
struct BurstSource: SourceNode {
    let probe: Probe
    func run(_ context: SourceContext) async throws {
        let deliveries = try await context.emit(each: (0..<probe.total).map { Message(payload: ["n": .number(Double($0))]) })
        probe.state.withLock { $0.emitted += deliveries.count }
        for d in deliveries { d.onSettled { outcome in probe.state.withLock { $0.outcomes.append(outcome) } } }
    }
}

/// Takes whole batches; a batch with n = 13 fails whole, and n = 13 alone fails too.
struct TimesTen: BatchTransformNode {
    let probe: Probe
    func process(batch: [Message], _ context: NodeContext) async throws -> [[Output]] {
        probe.state.withLock { $0.batchSizes.append(batch.count) }
        return try await batch.asyncMap { try await process($0, context) }
    }

    func process(_ message: Message, _ context: NodeContext) async throws -> [Output] {
        let n = message.payload["n"]?.doubleValue ?? 0
        if n == 13 { throw PermanentError("cannot take n=13") }
        return [.out(message.derived(payload: ["n": .number(n * 10)]))]
    }
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var out: [T] = []
        for e in self { out.append(try await transform(e)) }
        return out
    }
}

struct FlakyError: Error, CustomStringConvertible {
    var description: String { "flaky failure" }
}

struct FlakyTransform: TransformNode {
    let probe: Probe
    func process(_ message: Message, _ context: NodeContext) async throws -> [Output] {
        let (fail, unavailable) = probe.state.withLock { s -> (Bool, Bool) in
            s.attempts += 1
            guard s.failuresLeft != 0 else { return (false, false) }
            s.failuresLeft -= 1
            return (true, s.failAsUnavailable)
        }
        if unavailable { throw UnavailableError(service: "test server", reason: "restarting") }
        if fail { throw FlakyError() }
        return [.out(message)]
    }
}

struct RecordingSink: SinkNode {
    let probe: Probe
    let failOn: String?
    var batching: Batching { Batching(size: 10, flushInterval: .zero) }
    func write(_ batch: [Message], _ context: NodeContext) async throws {
        await probe.waitAtGate()
        if let failOn, batch.contains(where: { $0.payload["n"]?.templateText == failOn }) {
            throw PermanentError("cannot store n=\(failOn)")
        }
        probe.state.withLock { $0.written += batch.map(\.payload) }
    }
}

@Suite struct EngineTests {
    func hub(_ yaml: String, probe: Probe, store: (any Store)? = nil) async throws -> (Hub, any Store, HubMetrics) {
        let registry = NodeRegistry(CoreNodes.specs + probe.specs)
        let (flow, diagnostics) = FlowLoader(registry: registry, environment: [:]).load(text: yaml, file: "test.yaml")
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        let store: any Store = try await {
            if let store { return store }
            let s = try SQLiteStore(url: "sqlite::memory:")
            try await s.migrate()
            return s
        }()
        let metrics = HubMetrics()
        let env = EngineEnvironment(
            store: store, clock: VirtualClock(start: Date(timeIntervalSince1970: 1_774_742_400)), metrics: metrics,
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        return (Hub(flows: [try #require(flow)], registry: registry, environment: env), store, metrics)
    }

    func metric(_ metrics: HubMetrics, _ name: String, node: String) -> Double {
        for line in metrics.text().split(separator: "\n") where line.hasPrefix(name + "{") && line.contains("node=\"\(node)\"") {
            return Double(line.split(separator: " ").last!) ?? -1
        }
        return 0
    }

    @Test func aSlowSinkHoldsBackTheSourceWithBoundedQueues() async throws {
        let probe = Probe(total: 10_000, blockSink: true)
        let (hub, _, metrics) = try await hub("""
            flow: bp
            queue_size: 4
            nodes:
              - { id: src, type: test.source, to: [sink] }
              - { id: sink, type: test.sink }
            """, probe: probe)
        let running = Task { await hub.runFlows() }
        // The sink takes one batch and blocks; 4 more fill its queue; one more waits in `send`.
        #expect(await probe.until { probe.emitted >= 4 })
        for _ in 0..<20_000 { await Task.yield() }
        #expect(probe.emitted <= 4 + 10 + 1, "the source ran ahead of a blocked sink: \(probe.emitted) emitted")
        hub.recordQueueDepths()
        #expect(metric(metrics, "enchufe_queue_depth", node: "sink") <= 5)
        probe.openGate()
        await running.value  // the flow ends once the source is done and everything is committed
        #expect(probe.written.count == 10_000)
        #expect(probe.outcomes.count == 10_000)
        #expect(probe.outcomes.allSatisfy { $0 == .committed })
    }

    @Test func aFailingNodeIsRetriedWithBackoffThenSucceeds() async throws {
        let probe = Probe(total: 1, failures: 3)
        let (hub, _, metrics) = try await hub("""
            flow: retry
            nodes:
              - { id: src, type: test.source, to: [flaky] }
              - { id: flaky, type: test.flaky, to: [sink], retry: { attempts: 5, backoff: 1s } }
              - { id: sink, type: test.sink }
            """, probe: probe)
        await hub.runFlows()
        #expect(probe.attempts == 4)
        #expect(probe.written == [["n": 0]])
        #expect(metric(metrics, "enchufe_retries_total", node: "flaky") == 3)
        #expect(metric(metrics, "enchufe_errors_total", node: "flaky") == 0)
        #expect(probe.outcomes == [.committed])
    }

    @Test func aServerThatIsAwayIsWaitedForBeyondTheAttemptsAndNothingIsDeadLettered() async throws {
        let probe = Probe(total: 1, failures: 8, unavailable: true)
        let (hub, store, metrics) = try await hub("""
            flow: outage
            nodes:
              - { id: src, type: test.source, to: [flaky] }
              - { id: flaky, type: test.flaky, to: [sink], retry: { attempts: 2, backoff: 1s } }
              - { id: sink, type: test.sink }
            """, probe: probe)
        await hub.runFlows()
        #expect(probe.attempts == 9)
        #expect(probe.written == [["n": 0]])
        #expect(metric(metrics, "enchufe_retries_total", node: "flaky") == 8)
        #expect(metric(metrics, "enchufe_errors_total", node: "flaky") == 0)
        #expect(try await store.deadLetters(tenant: nil, limit: 10).isEmpty)
        #expect(probe.outcomes == [.committed])
    }

    @Test func afterTheLastAttemptTheMessageGoesToTheErrorsPort() async throws {
        let probe = Probe(total: 1, failures: -1)
        let (hub, store, metrics) = try await hub("""
            flow: errs
            nodes:
              - { id: src, type: test.source, to: [flaky] }
              - { id: flaky, type: test.flaky, errors: [sink], retry: { attempts: 3, backoff: 10s } }
              - { id: sink, type: test.sink }
            """, probe: probe)
        await hub.runFlows()
        #expect(probe.attempts == 3)
        #expect(probe.written == [["n": 0]])
        #expect(metric(metrics, "enchufe_retries_total", node: "flaky") == 2)
        #expect(metric(metrics, "enchufe_errors_total", node: "flaky") == 1)
        #expect(try await store.deadLetters(tenant: nil, limit: 10).isEmpty)
        #expect(probe.outcomes == [.committed])
    }

    @Test func withoutAnErrorsWireTheMessageBecomesADeadLetter() async throws {
        let probe = Probe(total: 1, failures: -1)
        let (hub, store, metrics) = try await hub("""
            flow: dlq
            tenant: sol
            nodes:
              - { id: src, type: test.source, to: [flaky] }
              - { id: flaky, type: test.flaky, to: [sink], retry: { attempts: 2 } }
              - { id: sink, type: test.sink }
            """, probe: probe)
        await hub.runFlows()
        let letters = try await store.deadLetters(tenant: "sol", limit: 10)
        #expect(letters.count == 1)
        #expect(letters.first?.flow == "dlq")
        #expect(letters.first?.node == "flaky")
        #expect(letters.first?.error == "flaky failure")
        #expect(letters.first?.attempts == 2)
        #expect(letters.first?.message == ["payload": ["n": 0]])
        #expect(probe.written.isEmpty)
        #expect(metric(metrics, "enchufe_dead_letters_total", node: "flaky") == 1)
        // Safe in the dead-letter store: the source may move on.
        #expect(probe.outcomes == [.committed])
    }

    @Test func aBadMessageInASinkBatchDoesNotTakeTheRestWithIt() async throws {
        let probe = Probe(total: 5, blockSink: true)
        let (hub, store, _) = try await hub("""
            flow: isolate
            nodes:
              - { id: src, type: test.source, to: [sink] }
              - { id: sink, type: test.sink, fail_on: "2" }
            """, probe: probe)
        let running = Task { await hub.runFlows() }
        #expect(await probe.until { probe.emitted == 5 })
        probe.openGate()
        await running.value
        #expect(Set(probe.written.compactMap { $0["n"]?.intValue }) == [0, 1, 3, 4])
        let letters = try await store.deadLetters(tenant: nil, limit: 10)
        #expect(letters.map(\.message) == [["payload": ["n": 2]]])
        #expect(letters.first?.error == "cannot store n=2")
    }

    /// A node that takes whole batches gets a burst whole; a batch it cannot process is run again a
    /// message at a time, so the message at fault alone is dead-lettered and the rest go on, in order.
    @Test func aBatchTransformGetsWholeBatchesAndOneBadMessageIsIsolated() async throws {
        let probe = Probe(total: 40)
        let (hub, store, _) = try await hub("""
            flow: batches
            tenant: sol
            nodes:
              - { id: src, type: test.burst, to: [scale] }
              - { id: scale, type: test.batcher, to: [sink] }
              - { id: sink, type: test.sink }
            """, probe: probe)
        await hub.runFlows()
        let sizes = probe.state.withLock { $0.batchSizes }
        #expect(sizes == [40], "the burst arrives whole, and its failure is not retried as a batch: \(sizes)")
        let expected: [JSONValue?] = (0..<40).filter { $0 != 13 }.map { .number(Double($0 * 10)) }
        #expect(probe.written.map { $0["n"] } == expected)
        let letters = try await store.deadLetters(tenant: "sol", limit: 10)
        let letter = try #require(letters.first)
        #expect(letters.count == 1 && letter.error.contains("n=13"), "\(letters)")
        #expect(letter.message["payload"]?["n"] == 13)
        #expect(probe.outcomes.count == 40 && probe.outcomes.allSatisfy { $0 == .committed })
    }

    /// `filter` and `map` change a burst where it lies (`InPlaceTransformNode`): what the filter
    /// drops is done, what it keeps goes on in order, and a message `map` cannot compute (integer
    /// division by zero for n = 13) is dead-lettered alone, unchanged, while the others go on.
    @Test func inPlaceTransformsKeepOrderDropWhatTheyDropAndIsolateAFailure() async throws {
        let probe = Probe(total: 40)
        let (hub, store, _) = try await hub("""
            flow: in-place
            tenant: sol
            nodes:
              - { id: src, type: test.burst, to: [thirds] }
              - { id: thirds, type: filter, when: "msg.payload.n % 3 ~= 0", to: [scale] }
              - id: scale
                type: map
                set: { payload.m: "=msg.payload.n // (msg.payload.n - 13)" }
                retry: { attempts: 1 }
                to: [sink]
              - { id: sink, type: test.sink }
            """, probe: probe)
        await hub.runFlows()
        let kept = (0..<40).filter { $0 % 3 != 0 && $0 != 13 }
        #expect(probe.written.map { $0["n"] } == kept.map { .number(Double($0)) })
        let floorDivision = kept.map { n -> JSONValue? in .number((Double(n) / Double(n - 13)).rounded(.down)) }
        #expect(probe.written.map { $0["m"] } == floorDivision)
        let letters = try await store.deadLetters(tenant: "sol", limit: 10)
        let letter = try #require(letters.first)
        #expect(letters.count == 1 && letter.message["payload"]?["n"] == 13 && letter.message["payload"]?["m"] == nil, "\(letters)")
        #expect(probe.outcomes.count == 40 && probe.outcomes.allSatisfy { $0 == .committed })
    }

    /// A message store.readings can never store (no readings, from a node wired in by mistake) was
    /// logged as failing "after 6 attempt(s)": it is dead-lettered after the attempts really made,
    /// with no retry.
    @Test func aMessageThatCanNeverBeStoredIsDeadLetteredWithoutRetries() async throws {
        let probe = Probe(total: 3)
        let (hub, store, metrics) = try await hub("""
            flow: nothing
            tenant: sol
            nodes:
              - { id: src, type: test.source, to: [store] }
              - { id: store, type: store.readings, batch_size: 10, retry: { attempts: 5, backoff: 10s } }
            """, probe: probe)
        await hub.runFlows()
        let letters = try await store.deadLetters(tenant: "sol", limit: 10)
        #expect(letters.count == 3)
        #expect(letters.allSatisfy { $0.attempts <= 2 && $0.error.contains("carries no readings") }, "\(letters.map(\.attempts))")
        #expect(metric(metrics, "enchufe_retries_total", node: "store") == 0)
    }

    @Test func validateWarnsWhenANodeWithoutReadingsFeedsStoreReadings() throws {
        let registry = NodeRegistry(CoreNodes.specs + [
            NodeSpec(type: "test.supplies", kind: .transform, summary: "", options: [], example: "", carriesReadings: false, make: nil),
        ])
        let yaml = "flow: w\nnodes:\n  - { id: t, type: schedule, every: 1d, to: [s] }\n  - { id: s, type: test.supplies, to: [store] }\n  - { id: store, type: store.readings }\n"
        let (flow, diagnostics) = FlowLoader(registry: registry, environment: [:]).load(text: yaml, file: "w.yaml")
        #expect(flow != nil, "a warning, not an error")
        #expect(diagnostics.map(\.description) == ["w.yaml:4:40: warning: 's' (test.supplies) sends messages without readings, which 'store' (store.readings) cannot store: each would go to the dead letters (map them with a 'readings' node first)"])
    }

    @Test func theSourceIsAcknowledgedOnlyAfterEverySinkCommitted() async throws {
        let probe = Probe(total: 1, blockSink: true)
        let (hub, _, _) = try await hub("""
            flow: ack
            nodes:
              - { id: src, type: test.source, to: [a, b] }
              - { id: a, type: test.sink }
              - { id: b, type: log }
            """, probe: probe)
        let running = Task { await hub.runFlows() }
        #expect(await probe.until { probe.emitted == 1 })
        for _ in 0..<5_000 { await Task.yield() }
        // `b` (log) has committed, `a` waits at the gate: nothing is acknowledged yet.
        #expect(probe.outcomes.isEmpty)
        #expect(probe.written.isEmpty)
        probe.openGate()
        await running.value
        #expect(probe.written.count == 1)
        #expect(probe.outcomes == [.committed])
    }

    @Test func aDeadLetterThatCannotBeStoredLeavesTheSourceUnacknowledged() async throws {
        let probe = Probe(total: 1, failures: -1)
        let store = try SQLiteStore(url: "sqlite::memory:")  // never migrated: no dead_letters table
        let (hub, _, _) = try await hub("""
            flow: nodlq
            nodes:
              - { id: src, type: test.source, to: [flaky] }
              - { id: flaky, type: test.flaky, to: [sink], retry: { attempts: 1 } }
              - { id: sink, type: test.sink }
            """, probe: probe, store: store)
        await hub.runFlows()
        #expect(probe.outcomes == [.failed("dead letter not stored")])
    }

    @Test func stoppingDrainsWhatIsInFlightBeforeReturning() async throws {
        let probe = Probe(total: 1_000_000, blockSink: true)
        let (hub, _, _) = try await hub("""
            flow: drain
            queue_size: 8
            nodes:
              - { id: src, type: test.source, to: [pass] }
              - { id: pass, type: test.flaky, to: [sink] }
              - { id: sink, type: test.sink }
            """, probe: probe)
        let running = Task { await hub.runFlows() }
        #expect(await probe.until { probe.emitted >= 8 })
        hub.stop()
        probe.openGate()
        await running.value
        // Everything the source managed to emit was committed; nothing was left behind.
        #expect(probe.emitted < 1_000_000)
        #expect(probe.written.count == probe.emitted)
        #expect(probe.outcomes.count == probe.emitted)
        #expect(probe.outcomes.allSatisfy { $0 == .committed })
    }

    @Test func storeReadingsUpsertsReadingsAndDeadLettersMessagesWithoutThem() async throws {
        let registry = NodeRegistry(CoreNodes.specs)
        let store = try SQLiteStore(url: "sqlite::memory:")
        try await store.migrate()
        let context = NodeContext(
            flow: "f", node: "store", tenant: "sol", store: store, clock: SystemClock(),
            logger: Logger(label: "t", factory: { _ in SwiftLogNoOpLogHandler() }), metrics: HubMetrics())
        guard case .sink(let sink)? = try registry.spec("store.readings")?.make?(
            NodeBuildContext(flow: "f", node: "store", tenant: "sol", options: NodeOptions(values: ["batch_size": 10]), connections: [:], logger: context.logger, metrics: context.metrics))
        else { Issue.record("store.readings is not a sink"); return }
        let ts = Date(timeIntervalSince1970: 1_774_742_400)
        try await sink.write([
            Message(readings: [Reading(tenant: "sol", series: "s", quantity: "consumption", ts: ts, resolution: "PT1H", value: 1, unit: "kWh", source: "f/x")]),
            Message(payload: ["series": "s", "quantity": "surplus", "ts": "2026-03-29T00:00:00Z", "value": 2, "unit": "kWh"]),
        ], context)
        let stored = try await store.readings(ReadingQuery(tenant: "sol"))
        #expect(stored.map(\.reading.quantity) == ["consumption", "surplus"])
        #expect(stored.last?.reading.source == "f/store")
        await #expect(throws: PermanentError.self) { try await sink.write([Message(payload: ["hello": "world"])], context) }
    }
}
