import Foundation
import Logging
import Synchronization

/// What every flow of a hub shares: the store, the clock, metrics, logs and redaction.
public struct EngineEnvironment: Sendable {
    public var store: any Store
    public var clock: any HubClock
    public var metrics: HubMetrics
    public var logger: Logger
    public var redactor: Redactor
    /// Set by flow tests: connectors answer from these instead of calling out.
    public var cannedAnswers: CannedAnswers?
    /// The webhook endpoints the flows' `webhook.in` nodes serve.
    public var webhooks = WebhookRoutes()
    public var exports = ExportRoutes()
    /// The watchers of every tap of the hub, together bounded (64 by default).
    public var tapWatchers = TapWatchers()
    /// This process's instance id (`--instance`).
    public var instance = InstanceHeartbeat.defaultID
    /// Whether singleton sources run under leases in the store (`enchufe run`; flow and engine
    /// tests run without).
    public var leases = false
    /// The id nodes make what they hold outside the store their own with (MQTT client ids, journal
    /// folders): `--instance`, when it is given and the store is shared. Nil otherwise, so that a
    /// lone instance finds its broker session and journal again after a restart.
    public var nodeInstance: String?

    public init(
        store: any Store, clock: any HubClock = SystemClock(), metrics: HubMetrics = HubMetrics(), logger: Logger,
        redactor: Redactor = Redactor(), cannedAnswers: CannedAnswers? = nil
    ) {
        self.cannedAnswers = cannedAnswers
        self.store = store
        self.clock = clock
        self.metrics = metrics
        self.logger = logger
        self.redactor = redactor
    }
}

/// A flow that could not be started (a factory refused its options, a server is missing).
public struct FlowStartError: Error, CustomStringConvertible {
    public var flow: String
    public var node: String
    public var reason: String
    public var description: String { "flow '\(flow)' not started: node '\(node)': \(reason)" }
}

/// One running flow: each node a task, joined by bounded queues. The only place that wires nodes.
final class FlowRunner: Sendable {
    struct RunningNode: Sendable {
        let definition: NodeDefinition
        let instance: NodeInstance
        /// A source that runs on one instance at a time (under a lease, when leases are on).
        let singleton: Bool
        let input: BoundedQueue<Message>?
        let metrics: NodeMetrics
        let tap: Tap
        let context: NodeContext
        /// Port → queues of the nodes it feeds.
        let outputs: [String: [BoundedQueue<Message>]]
        /// Every distinct queue this node feeds, told once when the node finishes.
        let downstream: [BoundedQueue<Message>]
        /// `context.readingSource`, made once: the engine stamps it on every reading made without one.
        let readingSource: String

        /// The node's start and close, if it is a transform or a sink.
        var lifecycle: (any NodeLifecycle)? {
            switch instance {
            case .source: nil
            case .transform(let transform): transform
            case .sink(let sink): sink
            }
        }

        var kind: String {
            switch instance {
            case .source: "source"
            case .transform: "transform"
            case .sink: "sink"
            }
        }
    }

    let definition: FlowDefinition
    let nodes: [RunningNode]
    let environment: EngineEnvironment
    let stopSignal = OneShot()
    let abandonSignal = OneShot()
    /// Fired once `run()` has returned.
    let finished = OneShot()
    let batchTokens = Atomic<UInt64>(0)
    let afterCommit = AfterCommitWork()

    init(definition: FlowDefinition, registry: NodeRegistry, environment: EngineEnvironment) throws {
        self.definition = definition
        self.environment = environment
        var logger = environment.logger
        logger[metadataKey: "flow"] = .string(definition.id)

        var producers: [String: Set<String>] = [:]
        for node in definition.nodes {
            for targets in node.wires.values { for t in targets { producers[t.node, default: []].insert(node.id) } }
        }
        var queues: [String: BoundedQueue<Message>] = [:]
        var instances: [String: NodeInstance] = [:]
        var singletons: Set<String> = []
        let connections = definition.connections.mapValues(\.options)
        for node in definition.nodes {
            guard let spec = registry.spec(node.type), let make = spec.make else {
                throw FlowStartError(flow: definition.id, node: node.id, reason: "node type '\(node.type)' cannot run in this build")
            }
            var nodeLogger = logger
            nodeLogger[metadataKey: "node"] = .string(node.id)
            var context = NodeBuildContext(
                flow: definition.id, node: node.id, tenant: definition.tenant, options: node.options, connections: connections, logger: nodeLogger,
                metrics: environment.metrics, testing: environment.cannedAnswers != nil)
            context.instance = environment.nodeInstance
            do {
                instances[node.id] = try make(context)
            } catch {
                throw FlowStartError(flow: definition.id, node: node.id, reason: environment.redactor.redact("\(error)"))
            }
            if spec.kind == .source && !spec.everyInstance { singletons.insert(node.id) }
            if spec.takesInput {
                queues[node.id] = BoundedQueue(capacity: node.queueSize, producers: producers[node.id]?.count ?? 0)
            }
        }
        let afterCommit = self.afterCommit
        nodes = definition.nodes.map { node in
            var nodeLogger = logger
            nodeLogger[metadataKey: "node"] = .string(node.id)
            let outputs = node.wires.mapValues { targets in targets.compactMap { queues[$0.node] } }
            var seen = Set<ObjectIdentifier>()
            let downstream = outputs.values.flatMap { $0 }.filter { seen.insert(ObjectIdentifier($0)).inserted }
            let metrics = NodeMetrics(flow: definition.id, node: node.id, type: node.type, metrics: environment.metrics)
            let isSource = if case .source = instances[node.id]! { true } else { false }
            var context = NodeContext(
                flow: definition.id, node: node.id, tenant: definition.tenant, store: environment.store,
                clock: isSource ? StatusClock(base: environment.clock, status: metrics.status) : environment.clock,
                logger: nodeLogger, metrics: environment.metrics,
                cannedAnswers: environment.cannedAnswers, afterCommit: afterCommit, webhooks: environment.webhooks,
                exports: environment.exports)
            context.status = metrics.status
            return RunningNode(
                definition: node, instance: instances[node.id]!, singleton: singletons.contains(node.id), input: queues[node.id],
                metrics: metrics, tap: Tap(redactor: environment.redactor, watchers: environment.tapWatchers),
                context: context,
                outputs: outputs, downstream: downstream, readingSource: context.readingSource)
        }
    }

    /// Runs every node until the sources are done (or stopped) and everything in flight is drained.
    /// Cancelling the task abandons what is still queued: its sources are told it failed.
    func run() async {
        guard await startNodes() else {
            finished.fire()
            return
        }
        await withTaskGroup(of: Bool.self) { group in
            for node in nodes {
                group.addTask {
                    switch node.instance {
                    case .source(let source): await self.runSource(source, node)
                    case .transform(let transform): await self.runTransform(transform, node)
                    case .sink(let sink): await self.runSink(sink, node)
                    }
                    // Closed before the nodes it feeds see their input end: a flow closes in
                    // wiring order (`NodeLifecycle`).
                    await self.close(node)
                    for queue in node.downstream { queue.finishProducer() }
                    return true
                }
            }
            group.addTask {
                await self.abandonSignal.wait()
                return false
            }
            var left = nodes.count
            if left == 0 { group.cancelAll() }
            while let isNode = await group.next() {
                if isNode { left -= 1 }
                // Every node done (the abandon watcher is no longer needed), or abandoned.
                if left == 0 || !isNode { group.cancelAll() }
            }
        }
        await afterCommit.wait()
        for node in nodes { node.tap.finish() }
        finished.fire()
    }

    /// Starts every transform and sink (`NodeLifecycle.start`), in the flow's order, before any
    /// source runs. If one fails, those started are closed again, the node says why in its status
    /// and the flow does not run: false.
    func startNodes() async -> Bool {
        var started: [RunningNode] = []
        for node in nodes {
            guard let lifecycle = node.lifecycle else { continue }
            do {
                try await lifecycle.start(node.context)
                started.append(node)
            } catch {
                let reason = environment.redactor.redact("\(error)")
                node.metrics.failed("could not start: \(reason)", at: environment.clock.now(), state: .stopped)
                node.context.logger.error("flow '\(definition.id)' not started: node '\(node.definition.id)' could not start: \(reason)")
                for node in started.reversed() { await close(node) }
                return false
            }
        }
        return true
    }

    /// Lets go of what a transform or sink holds (`NodeLifecycle.close`); an error is logged.
    func close(_ node: RunningNode) async {
        guard let lifecycle = node.lifecycle else { return }
        do {
            try await lifecycle.close(node.context)
        } catch {
            node.context.logger.warning("node '\(node.definition.id)' did not close cleanly: \(environment.redactor.redact("\(error)"))")
        }
    }

    /// Stops the sources; what is in flight drains through the flow.
    func stop() { stopSignal.fire() }

    /// Waits for the flow to drain after `stop()`; past `timeout`, abandons what is still in flight
    /// (unacknowledged: its sources deliver it again) and waits for the nodes to end.
    func finishedOrAbandoned(after timeout: Duration, logger: Logger) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.finished.wait() }
            group.addTask {
                do { try await Task.sleep(for: timeout) } catch { return }
                if !self.finished.isFired {
                    logger.warning("flow '\(self.definition.id)' did not drain within \(DurationText.format(timeout)); what is still in flight is not acknowledged and will be delivered again")
                    self.abandonSignal.fire()
                }
            }
            await group.next()
            group.cancelAll()
        }
        await finished.wait()
    }


    /// The live messages of node `id`, if the flow has it.
    func tap(_ id: String) -> Tap? { nodes.first { $0.definition.id == id }?.tap }

    /// Sends `message` into node `id` as if a node before it had sent it (a dead letter's replay);
    /// the delivery settles once what derives from it is committed (or dead-lettered again).
    func inject(_ message: Message, into id: String) async throws -> Delivery {
        guard let node = nodes.first(where: { $0.definition.id == id }) else {
            throw PermanentError("flow '\(definition.id)' has no node '\(id)' (any more)")
        }
        guard let queue = node.input else {
            throw PermanentError("node '\(id)' of flow '\(definition.id)' takes no input: a source's messages cannot be sent back into it")
        }
        let delivery = Delivery()
        var m = message
        m.delivery = delivery
        delivery.retain()
        defer { delivery.seal() }
        do {
            try await queue.send(m)
        } catch {
            delivery.release(failure: "not sent: the flow is stopping")
            throw error
        }
        return delivery
    }


    /// The running sources of this flow that can take over what a dead instance left, by node id.
    let adopters = Mutex<[String: (any AdoptingSource, SourceContext)]>([:])
}
