import CoreMetrics
import Foundation
import Metrics
import Prometheus

/// The hub's metrics registry, rendered at `/metrics` in Prometheus text format. Each hub has its
/// own (no process-wide bootstrap), so tests can run several side by side.
public final class HubMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    public let factory: PrometheusMetricsFactory

    public init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(100), .milliseconds(1), .milliseconds(5), .milliseconds(25), .milliseconds(100),
            .milliseconds(500), .seconds(2), .seconds(10), .seconds(60),
        ]
        self.factory = factory
    }

    public func text() -> String { registry.emitToString() }
}

/// Counters of one node, labelled with its flow and node id, and its status (the same counts,
/// readable, with its state and last error).
final class NodeMetrics: Sendable {
    let status = NodeStatus()
    let messagesIn: CoreMetrics.Counter
    let messagesOut: CoreMetrics.Counter
    let errors: CoreMetrics.Counter
    let retries: CoreMetrics.Counter
    let deadLetters: CoreMetrics.Counter
    let dropped: CoreMetrics.Counter
    let queueDepth: CoreMetrics.Gauge
    let processing: Metrics.Timer

    init(flow: String, node: String, type: String, metrics: HubMetrics) {
        let labels = [("flow", flow), ("node", node), ("type", type)]
        let f = metrics.factory
        messagesIn = CoreMetrics.Counter(label: "enchufe_messages_in_total", dimensions: labels, factory: f)
        messagesOut = CoreMetrics.Counter(label: "enchufe_messages_out_total", dimensions: labels, factory: f)
        errors = CoreMetrics.Counter(label: "enchufe_errors_total", dimensions: labels, factory: f)
        retries = CoreMetrics.Counter(label: "enchufe_retries_total", dimensions: labels, factory: f)
        deadLetters = CoreMetrics.Counter(label: "enchufe_dead_letters_total", dimensions: labels, factory: f)
        dropped = CoreMetrics.Counter(label: "enchufe_dropped_total", dimensions: labels, factory: f)
        queueDepth = CoreMetrics.Gauge(label: "enchufe_queue_depth", dimensions: labels, factory: f)
        processing = Metrics.Timer(label: "enchufe_processing_seconds", dimensions: labels, preferredDisplayUnit: .seconds, factory: f)
    }

    func countIn(_ n: Int = 1) {
        messagesIn.increment(by: n)
        status.countIn(n)
    }

    func countOut(_ n: Int = 1) {
        messagesOut.increment(by: n)
        status.countOut(n)
    }

    func retrying(_ reason: String, waiting: Bool, at: Date) {
        retries.increment()
        status.retrying(reason, waiting: waiting, at: at)
    }

    func failed(_ reason: String, at: Date, deadLetter: Bool = false, state: NodeStatus.State? = nil) {
        errors.increment()
        if deadLetter { deadLetters.increment() }
        status.failed(reason, at: at, deadLetter: deadLetter, state: state)
    }
}
