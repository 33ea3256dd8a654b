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

        var kind: String {
            switch instance {
            case .source: "source"
            case .transform: "transform"
            case .sink: "sink"
            }
        }
    }

    let definition: FlowDefinition
    private let nodes: [RunningNode]
    private let environment: EngineEnvironment
    private let stopSignal = OneShot()
    private let abandonSignal = OneShot()
    /// Fired once `run()` has returned.
    let finished = OneShot()
    private let batchTokens = Atomic<UInt64>(0)
    private let afterCommit = AfterCommitWork()

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
            return RunningNode(
                definition: node, instance: instances[node.id]!, singleton: singletons.contains(node.id), input: queues[node.id],
                metrics: metrics, tap: Tap(redactor: environment.redactor, watchers: environment.tapWatchers),
                context: NodeContext(
                    flow: definition.id, node: node.id, tenant: definition.tenant, store: environment.store,
                    clock: isSource ? StatusClock(base: environment.clock, status: metrics.status) : environment.clock,
                    logger: nodeLogger, metrics: environment.metrics,
                    cannedAnswers: environment.cannedAnswers, afterCommit: afterCommit, webhooks: environment.webhooks,
                    exports: environment.exports),
                outputs: outputs, downstream: downstream)
        }
    }

    /// Runs every node until the sources are done (or stopped) and everything in flight is drained.
    /// Cancelling the task abandons what is still queued: its sources are told it failed.
    func run() async {
        await withTaskGroup(of: Bool.self) { group in
            for node in nodes {
                group.addTask {
                    switch node.instance {
                    case .source(let source): await self.runSource(source, node)
                    case .transform(let transform): await self.runTransform(transform, node)
                    case .sink(let sink): await self.runSink(sink, node)
                    }
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

    /// The flow's status for `/api/v1/flows`: its nodes (state, counters, queue, last error, next
    /// run, newest data of sources) and wires; the flow's status is its worst node's.
    func statusJSON(now: Date) -> [String: JSONValue] {
        var worst = 0
        let rank: [NodeStatus.State: Int] = [.stopped: 0, .running: 1, .waiting: 2, .failing: 3]
        var allStopped = true
        var nodesJSON: [JSONValue] = []
        var wires: [JSONValue] = []
        for node in nodes {
            let st = node.metrics.status.snapshot
            if st.state != .stopped { allStopped = false }
            // A source waiting for its next turn is as it should be; waiting for a server is not.
            worst = max(worst, st.state == .waiting && st.nextRun != nil ? 1 : rank[st.state] ?? 0)
            var o: [String: JSONValue] = [
                "id": .string(node.definition.id), "type": .string(node.definition.type), "status": .string(st.state.rawValue),
                "kind": .string(node.kind),
                "messages_in": .number(Double(st.messagesIn)), "messages_out": .number(Double(st.messagesOut)),
                "errors": .number(Double(st.errors)), "retries": .number(Double(st.retries)), "dead_letters": .number(Double(st.deadLetters)),
                "line": .number(Double(node.definition.location.line)),
            ]
            if let input = node.input {
                o["queue_depth"] = .number(Double(input.count))
                o["queue_size"] = .number(Double(input.capacity))
            }
            if let e = st.lastError, let at = st.lastErrorAt { o["last_error"] = ["message": .string(e), "at": .string(ISO8601.string(at))] }
            if let next = st.nextRun { o["next_run"] = .string(ISO8601.string(next)) }
            if st.underLease { o["lease"] = st.leaseFence.map { ["held_here": true, "fence": .number(Double($0))] } ?? ["held_here": false] }
            if let newest = st.newestData {
                o["newest_data"] = .string(ISO8601.string(newest))
                o["lag_seconds"] = .number(max(0, now.timeIntervalSince(newest)).rounded())
            }
            nodesJSON.append(.object(o))
            for (port, targets) in node.definition.wires.sorted(by: { $0.key < $1.key }) {
                for t in targets { wires.append(["from": .string(node.definition.id), "port": .string(port), "to": .string(t.node)]) }
            }
        }
        let status = allStopped && !nodes.isEmpty ? "stopped" : ["stopped", "running", "waiting", "failing"][worst]
        return [
            "id": .string(definition.id), "file": .string(definition.file), "tenant": .string(definition.tenant),
            "description": definition.description.map(JSONValue.string) ?? .null, "status": .string(status),
            "nodes": .array(nodesJSON), "wires": .array(wires),
        ]
    }

    /// Every node's status and queue depth, in the flow file's order.
    func nodeStatuses() -> [(definition: NodeDefinition, status: NodeStatus.Snapshot, queueDepth: Int?, queueSize: Int?)] {
        nodes.map { ($0.definition, $0.metrics.status.snapshot, $0.input?.count, $0.input?.capacity) }
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

    /// Depth of every node's input queue, for `/metrics`.
    func recordQueueDepths() {
        for node in nodes { node.metrics.queueDepth.record(node.input?.count ?? 0) }
    }

    // MARK: Routing

    /// Sends a message out of `port`. The message holds one claim on its delivery, which passes to
    /// the copies sent (or is released if the port is not wired).
    private func route(_ message: Message, from node: RunningNode, port: String) async throws {
        var message = message
        stampReadings(&message, from: node)
        node.tap.publish(message, port: port)
        let targets = node.outputs[port] ?? []
        guard !targets.isEmpty else {
            message.delivery?.release()
            return
        }
        message.delivery?.retain(targets.count - 1)
        for (i, queue) in targets.enumerated() {
            do {
                try await queue.send(message)
            } catch {
                for _ in i..<targets.count { message.delivery?.release(failure: "the flow stopped before the message was delivered") }
                throw error
            }
        }
    }

    private func stampReadings(_ message: inout Message, from node: RunningNode) {
        guard message.readings.contains(where: { $0.tenant.isEmpty || $0.source.isEmpty }) else { return }
        for i in message.readings.indices {
            if message.readings[i].tenant.isEmpty { message.readings[i].tenant = definition.tenant }
            if message.readings[i].source.isEmpty { message.readings[i].source = "\(definition.id)/\(node.definition.id)" }
        }
    }

    /// A message that failed after its retries: to the `errors` port if wired, else to the dead letters.
    private func fail(_ message: Message, error: any Error, attempts: Int, node: RunningNode) async {
        if let lost = error as? LeaseLost {
            // Not the message's fault: another instance runs its source now and does this work.
            node.context.logger.notice("\(lost.description); the message is left to the instance that holds it")
            message.delivery?.release(failure: lost.description)
            return
        }
        let reason = environment.redactor.redact(String(describing: error))
        let now = environment.clock.now()
        if let errorTargets = node.outputs[NodeDefinition.errorsPort], !errorTargets.isEmpty {
            node.metrics.failed(reason, at: now)
            node.context.logger.warning("message failed after \(attempts) attempt(s), sent to the errors port: \(reason)")
            var m = message
            m.attributes["error"] = reason
            m.attributes["error_flow"] = definition.id
            m.attributes["error_node"] = node.definition.id
            try? await route(m, from: node, port: NodeDefinition.errorsPort)
            return
        }
        node.metrics.failed(reason, at: now, deadLetter: true)
        do {
            let id = try await environment.store.addDeadLetter(
                NewDeadLetter(
                    tenant: definition.tenant, flow: definition.id, node: node.definition.id, error: reason,
                    message: message.json, attempts: attempts))
            node.context.logger.warning("message failed after \(attempts) attempt(s), dead letter \(id): \(reason)")
            message.delivery?.release()
        } catch {
            node.context.logger.error("message failed and its dead letter could not be stored: \(environment.redactor.redact("\(error)")); its source will not be acknowledged")
            message.delivery?.release(failure: "dead letter not stored")
        }
    }

    /// Runs `body` with the node's retry policy (or only `attempts` attempts). A server that is
    /// unavailable is waited for without counting attempts. Returns nil when it gave up (the error and
    /// the attempts made are passed to `onFailure`) or the flow was cancelled.
    private func withRetries<T>(
        _ node: RunningNode, attempts: Int? = nil, _ body: () async throws -> T, onFailure: (any Error, Int) async -> Void
    ) async -> T? {
        let policy = node.definition.retry
        let maxAttempts = attempts ?? policy.attempts
        var attempt = 0
        var outage = 0
        while true {
            attempt += 1
            let started = ContinuousClock.now
            do {
                let result = try await body()
                node.metrics.processing.recordNanoseconds((ContinuousClock.now - started).nanosecondsTotal)
                node.metrics.status.succeeded()
                if outage > 0 { node.context.logger.notice("resumed after \(outage) attempt(s) while a server was unavailable") }
                return result
            } catch is CancellationError where Task.isCancelled {
                return nil
            } catch let error as UnavailableError where !Task.isCancelled {
                // Not the message's fault: wait for the server however long it takes (not counted as an attempt).
                attempt -= 1
                outage += 1
                node.metrics.retrying(environment.redactor.redact(error.description), waiting: true, at: environment.clock.now())
                let wait = Self.outageDelay(outage, policy: policy)
                if outage == 1 || outage.isMultiple(of: 20) {
                    node.context.logger.warning("\(environment.redactor.redact(error.description)); waiting (attempt \(outage), next in \(DurationText.format(wait))), sources held back")
                }
                do { try await environment.clock.sleep(for: wait) } catch { return nil }
            } catch {
                let permanent = error is PermanentError || error is LeaseLost
                guard attempt < maxAttempts, !permanent, !Task.isCancelled else {
                    await onFailure(error, attempt)
                    return nil
                }
                node.metrics.retrying(environment.redactor.redact("\(error)"), waiting: false, at: environment.clock.now())
                let wait = policy.delay(afterAttempt: attempt, retryAfter: (error as? RetryAfterError)?.retryAfter)
                node.context.logger.debug("attempt \(attempt) failed, retrying in \(DurationText.format(wait)): \(environment.redactor.redact("\(error)"))")
                do { try await environment.clock.sleep(for: wait) } catch { return nil }
            }
        }
    }

    /// The wait between attempts while a server is unavailable: the node's backoff, but at most 5 s, so
    /// the hub resumes soon after the server returns.
    static func outageDelay(_ outage: Int, policy: RetryPolicy) -> Duration {
        min(policy.delay(afterAttempt: outage), .seconds(5))
    }

    // MARK: Node loops

    private func runSource(_ source: any SourceNode, _ node: RunningNode) async {
        await SourceTask.$node.withValue(node.definition.id) {
            await runSourceTask(source, node)
        }
        (environment.clock as? any SourceWatchingClock)?.sourceEnded()
    }

    private func runSourceTask(_ source: any SourceNode, _ node: RunningNode) async {
        let queues = node.outputs[NodeDefinition.outPort] ?? []
        let context = SourceContext(
            node: node.context,
            emitter: { [self] message in
                node.metrics.countOut()
                node.metrics.status.sent(message)
                var message = message
                message.lease = Lease.current
                try await self.route(message, from: node, port: NodeDefinition.outPort)
            },
            room: { queues.map { max(0, $0.capacity - $0.count) }.min() ?? .max })
        if let adopting = source as? any AdoptingSource {
            adopters.withLock { $0[node.definition.id] = (adopting, context) }
        }
        defer { _ = adopters.withLock { $0.removeValue(forKey: node.definition.id) } }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                if node.singleton && self.environment.leases {
                    await self.runHoldingLease(source, node, context)
                } else {
                    _ = await self.runWithRestarts(source, node, context)
                }
            }
            group.addTask { await self.stopSignal.wait() }
            await group.next()
            group.cancelAll()
        }
    }

    /// The running sources of this flow that can take over what a dead instance left, by node id.
    private let adopters = Mutex<[String: (any AdoptingSource, SourceContext)]>([:])

    /// The ids of this flow's nodes that can adopt a dead instance's leftovers.
    var adoptingNodes: [String] { adopters.withLock { $0.keys.sorted() } }

    /// Has node `id` take over what instance `instance` left; false when the node is not running.
    func adopt(node id: String, instance: String) async throws -> Bool {
        guard let (source, context) = adopters.withLock({ $0[id] }) else { return false }
        try await source.adopt(instance: instance, context)
        return true
    }

    /// Runs a source, restarting it after a failure with the node's backoff, until it ends, fails
    /// for good, is cancelled, or (under a lease) finds that its lease was lost.
    private func runWithRestarts(_ source: any SourceNode, _ node: RunningNode, _ context: SourceContext) async -> SourceEnding {
        var failures = 0
        while !Task.isCancelled {
            do {
                node.metrics.status.set(.running)
                try await source.run(context)
                node.metrics.status.set(.stopped)
                return .ended
            } catch is CancellationError {
                return .ended
            } catch is LeaseLost {
                return .leaseLost
            } catch {
                let reason = environment.redactor.redact("\(error)")
                let permanent = error is PermanentError
                node.metrics.failed(reason, at: environment.clock.now(), state: permanent ? .stopped : .failing)
                if permanent {
                    node.context.logger.error("source stopped: \(reason)")
                    return .ended
                }
                failures += 1
                let wait = node.definition.retry.delay(afterAttempt: failures, retryAfter: (error as? RetryAfterError)?.retryAfter)
                node.context.logger.error("source failed, restarting in \(DurationText.format(wait)): \(reason)")
                do { try await environment.clock.sleep(for: wait) } catch { return .ended }
            }
        }
        return .ended
    }

    enum SourceEnding { case ended, leaseLost }

    /// How long a lease lasts without renewal, how often it is renewed, and how often an instance
    /// without it asks again: a dead holder's sources move within `leaseTTL + leasePoll` (20 s).
    static let leaseTTL = Duration.seconds(15)
    static let leaseRenewal = Duration.seconds(5)
    static let leasePoll = Duration.seconds(5)

    /// A singleton source: run only while this instance holds its lease in the store, its
    /// checkpoint writes fenced with it (`Lease.current`). Another instance's lease is waited for;
    /// a lease lost (this instance was paused or cut off) stops the source here at once.
    private func runHoldingLease(_ source: any SourceNode, _ node: RunningNode, _ context: SourceContext) async {
        let name = "\(definition.tenant)/\(definition.id)/\(node.definition.id)"
        let store = environment.store, holder = environment.instance
        var waitingSaid = false
        while !Task.isCancelled {
            let lease: Lease?
            do {
                lease = try await store.acquireLease(name, holder: holder, ttl: Self.leaseTTL)
            } catch {
                node.context.logger.warning("the lease of this source could not be asked for: \(environment.redactor.redact("\(error)"))")
                lease = nil
            }
            guard let lease else {
                if !waitingSaid { node.context.logger.info("another instance runs this source; this one takes over if it stops") }
                waitingSaid = true
                node.metrics.status.leaseHeld(by: nil)
                do { try await Task.sleep(for: Self.leasePoll) } catch { return }
                continue
            }
            waitingSaid = false
            node.metrics.status.leaseHeld(by: lease)
            node.context.logger.info("runs this source here (lease fence \(lease.fence))")
            let lost = await withTaskGroup(of: Bool.self) { group in
                group.addTask {
                    await Lease.$current.withValue(lease) { await self.runWithRestarts(source, node, context) } == .leaseLost
                }
                group.addTask {
                    while true {
                        do { try await Task.sleep(for: Self.leaseRenewal) } catch { return false }
                        // A store error is not a loss: the lease may still hold, and fenced writes
                        // are refused if it does not.
                        if (try? await store.renewLease(lease, ttl: Self.leaseTTL)) == false { return true }
                    }
                }
                let lost = await group.next() ?? false
                group.cancelAll()
                return lost
            }
            if !lost {
                // Given up so another instance need not wait for it to expire (this task is being
                // cancelled by the stop: the release runs in one of its own).
                await Task { try? await store.releaseLease(lease) }.value
                return
            }
            node.context.logger.warning("lost the lease of this source (fence \(lease.fence)) to another instance: stopped here")
            node.metrics.status.leaseHeld(by: nil)
        }
    }

    private func runTransform(_ transform: any TransformNode, _ node: RunningNode) async {
        guard let input = node.input else { return }
        reading: while true {
            let next: BoundedQueue<Message>.Next
            if let deadline = transform.flushDeadline() {
                let token = batchTokens.add(1, ordering: .relaxed).newValue
                let timer = Task { [clock = environment.clock] in
                    try? await clock.sleep(until: deadline)
                    input.interrupt(token: token)
                }
                next = await input.next(token: token)
                timer.cancel()
            } else {
                next = await input.next()
            }
            switch next {
            case .element(let message):
                await process(message, with: transform, node)
            case .interrupted:
                if Task.isCancelled { break reading }
                await flush(transform, node, final: false)
            case .finished:
                await flush(transform, node, final: true)
                break reading
            }
        }
        if Task.isCancelled { await flush(transform, node, final: true) }
        abandonQueued(node)
    }

    private func process(_ message: Message, with transform: any TransformNode, _ node: RunningNode) async {
        node.metrics.countIn()
        let outputs = await withRetries(node, { try await Lease.$current.withValue(message.lease) { try await transform.process(message, node.context) } }) { error, attempts in
            await self.fail(message, error: error, attempts: attempts, node: node)
        }
        guard let outputs else {
            if Task.isCancelled { message.delivery?.release(failure: "the flow stopped before the message was committed") }
            return
        }
        node.metrics.countOut(outputs.count)
        for output in outputs {
            var m = output.message
            if m.delivery == nil || m.delivery === message.delivery {
                m.delivery = message.delivery
                message.delivery?.retain()
            }
            if m.lease == nil { m.lease = message.lease }
            try? await route(m, from: node, port: output.port)
        }
        message.delivery?.release()
    }

    /// Sends what a node held back. Its outputs carry their own deliveries (`Message.carrying`).
    private func flush(_ transform: any TransformNode, _ node: RunningNode, final: Bool) async {
        let outputs: [Output]
        do {
            outputs = try await transform.flush(node.context, final: final)
        } catch {
            let reason = environment.redactor.redact("\(error)")
            node.metrics.failed(reason, at: environment.clock.now())
            node.context.logger.error("flush failed: \(reason)")
            return
        }
        node.metrics.countOut(outputs.count)
        for output in outputs { try? await route(output.message, from: node, port: output.port) }
    }

    private func runSink(_ sink: any SinkNode, _ node: RunningNode) async {
        guard let input = node.input else { return }
        let batching = sink.batching
        var finished = false
        while !finished {
            guard case .element(let first) = await input.next() else { break }
            var batch = [first]
            while batch.count < batching.size, let m = input.poll() { batch.append(m) }
            if (batch.count < batching.size) && (batching.flushInterval > Duration.zero) {
                let token = batchTokens.add(1, ordering: .relaxed).newValue
                let deadline = environment.clock.now().addingTimeInterval(batching.flushInterval.seconds)
                let timer = Task { [clock = environment.clock] in
                    try? await clock.sleep(until: deadline)
                    input.interrupt(token: token)
                }
                filling: while batch.count < batching.size {
                    switch await input.next(token: token) {
                    case .element(let m):
                        batch.append(m)
                        while batch.count < batching.size, let m = input.poll() { batch.append(m) }
                    case .finished:
                        finished = true
                        break filling
                    case .interrupted:
                        break filling
                    }
                }
                timer.cancel()
            }
            await write(batch, to: sink, node)
            if Task.isCancelled { break }
        }
        abandonQueued(node)
    }

    private func write(_ batch: [Message], to sink: any SinkNode, _ node: RunningNode) async {
        // Messages of singleton sources are written under their lease: one write per lease.
        if batch.contains(where: { $0.lease != nil }) {
            var order: [Lease?] = []
            var groups: [Lease?: [Message]] = [:]
            for m in batch {
                if groups[m.lease] == nil { order.append(m.lease) }
                groups[m.lease, default: []].append(m)
            }
            for lease in order {
                await Lease.$current.withValue(lease) { await writeUnfenced(groups[lease]!, to: sink, node) }
            }
            return
        }
        await writeUnfenced(batch, to: sink, node)
    }

    private func writeUnfenced(_ batch: [Message], to sink: any SinkNode, _ node: RunningNode) async {
        node.metrics.countIn(batch.count)
        for m in batch { node.tap.publish(m, port: "in") }
        var failure: (any Error)?
        var attempts = 0
        let written: Void? = await withRetries(node, { try await sink.write(batch, node.context) }) { error, made in
            failure = error
            attempts = made
        }
        if written != nil {
            node.metrics.countOut(batch.count)
            for m in batch { m.delivery?.release() }
            return
        }
        guard let failure else {  // cancelled
            for m in batch { m.delivery?.release(failure: "the flow stopped before the message was committed") }
            return
        }
        if batch.count == 1 {
            await fail(batch[0], error: failure, attempts: attempts, node: node)
            return
        }
        // Isolate the messages at fault: write one at a time, so the rest are not lost with them.
        for m in batch {
            let written: Void? = await withRetries(node, attempts: 1, { try await sink.write([m], node.context) }) { error, _ in
                await self.fail(m, error: error, attempts: attempts + 1, node: node)
            }
            if written != nil {
                node.metrics.countOut()
                m.delivery?.release()
            } else if Task.isCancelled {
                m.delivery?.release(failure: "the flow stopped before the message was committed")
            }
        }
    }

    /// After cancellation: whatever is still queued was not committed; its sources must know.
    private func abandonQueued(_ node: RunningNode) {
        for m in node.input?.drainRemaining() ?? [] {
            m.delivery?.release(failure: "the flow stopped before the message was committed")
        }
    }
}
