import EnchufeCore
import Foundation
import Logging
import Postgres
import Synchronization
import TestSupport

/// A source that sends `messages` messages of `readingsPerMessage` readings each, and redelivers any
/// whose delivery failed (as a broker redelivers what was not acknowledged) until all are committed.
final class ReadingsFeed: Sendable {
    let messages: Int
    let readingsPerMessage: Int
    private struct State {
        var acknowledged = 0
        var redelivered = 0
        var milestones: [(Int, CheckedContinuation<Void, Never>)] = []
    }
    private let state = Mutex(State())
    let start = Date(timeIntervalSince1970: 1_774_742_400)

    init(messages: Int, readingsPerMessage: Int) {
        self.messages = messages
        self.readingsPerMessage = readingsPerMessage
    }

    var total: Int { messages * readingsPerMessage }
    var acknowledged: Int { state.withLock { $0.acknowledged } }
    var redelivered: Int { state.withLock { $0.redelivered } }

    /// Returns once at least `count` readings were acknowledged.
    func acknowledged(atLeast count: Int) async {
        await withCheckedContinuation { continuation in
            let reached = state.withLock { s -> Bool in
                if s.acknowledged >= count { return true }
                s.milestones.append((count, continuation))
                return false
            }
            if reached { continuation.resume() }
        }
    }

    func message(_ i: Int) -> Message {
        let readings = (0..<readingsPerMessage).map { j in
            Reading(
                series: "device:inv-\(j)", quantity: "power", ts: start.addingTimeInterval(Double(i) * 60), resolution: "PT0S",
                value: Double(i * readingsPerMessage + j), unit: "W")
        }
        return Message(payload: ["i": .number(Double(i))], readings: readings)
    }

    func settled(_ outcome: DeliveryOutcome) {
        guard outcome == .committed else { return }
        let ready = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.acknowledged += readingsPerMessage
            let now = s.acknowledged
            let ready = s.milestones.filter { $0.0 <= now }.map(\.1)
            s.milestones.removeAll { $0.0 <= now }
            return ready
        }
        for c in ready { c.resume() }
    }

    var spec: NodeSpec {
        NodeSpec(type: "test.feed", kind: .source, summary: "sends the feed", options: [], example: "", make: { _ in .source(FeedSource(feed: self)) })
    }
}

struct FeedSource: SourceNode {
    let feed: ReadingsFeed
    func run(_ context: SourceContext) async throws {
        var pending = Array(0..<feed.messages)
        while !pending.isEmpty {
            var deliveries: [(Int, Delivery)] = []
            for i in pending {
                let delivery = try await context.emit(feed.message(i))
                delivery.onSettled { [feed] outcome in feed.settled(outcome) }
                deliveries.append((i, delivery))
            }
            pending = []
            for (i, delivery) in deliveries {
                if await delivery.outcome() != .committed { pending.append(i) }
            }
            feed.noteRedelivered(pending.count)
        }
    }
}

extension ReadingsFeed {
    func noteRedelivered(_ count: Int) { state.withLock { $0.redelivered += count } }
}

enum Hubs {
    static let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    /// A hub running one flow given as YAML, with the Core and PostgreSQL node types and `extra`.
    static func make(_ yaml: String, store: any Store, extra: [NodeSpec] = [], clock: any HubClock = SystemClock(), metrics: HubMetrics = HubMetrics()) throws -> Hub {
        let registry = NodeRegistry(CoreNodes.specs + PostgresModule.specs + extra)
        let (flow, diagnostics) = FlowLoader(registry: registry, environment: [:]).load(text: yaml, file: "test.yaml")
        guard let flow, diagnostics.isEmpty else { throw HubError(description: "flow does not load: \(diagnostics)") }
        return Hub(flows: [flow], registry: registry, environment: EngineEnvironment(store: store, clock: clock, metrics: metrics, logger: quiet))
    }

    struct HubError: Error, CustomStringConvertible { var description: String }

    /// The value of a counter in the hub's metrics for one node (0 when absent).
    static func metric(_ metrics: HubMetrics, _ name: String, node: String) -> Double {
        for line in metrics.text().split(separator: "\n") where line.hasPrefix(name + "{") && line.contains("node=\"\(node)\"") {
            return Double(line.split(separator: " ").last!) ?? -1
        }
        return 0
    }
}
