import Foundation
import Logging

/// A message leaving a node on one of its ports (`out` unless the node has several outputs).
public struct Output: Sendable {
    public var port: String
    public var message: Message

    public init(_ message: Message, port: String = NodeDefinition.outPort) {
        self.port = port
        self.message = message
    }

    public static func out(_ message: Message) -> Output { Output(message) }
}

/// A node with no input that produces messages: a schedule, a webhook, an MQTT subscription.
/// `run` returns when the source is done or its task is cancelled (the flow is stopping).
public protocol SourceNode: Sendable {
    func run(_ context: SourceContext) async throws
}

/// A source that runs on every instance of a deployment and holds, per instance, something outside
/// the store that another instance must take over when that instance dies for good (an MQTT
/// client's persistent session with the messages the broker queued for it, a journal folder).
/// `adopt` takes over what instance `instance` left, sends it through this node's flow (with
/// `context`, as `run` does), and returns once everything taken is committed; the engine calls it
/// on one live instance only, under a lease (`InstanceAdoption`).
public protocol AdoptingSource: SourceNode {
    func adopt(instance: String, _ context: SourceContext) async throws
}

/// A node that turns each input message into zero, one or many output messages.
///
/// A node that holds messages back (a batch filling up, a delay) emits them from `flush`, which the
/// engine calls at the node's `flushDeadline` and, with `final`, once its input has ended: then
/// everything held must go.
public protocol TransformNode: NodeLifecycle {
    func process(_ message: Message, _ context: NodeContext) async throws -> [Output]
    /// When `flush` should run even if no message arrives; nil: only when a message arrives.
    func flushDeadline() -> Date?
    func flush(_ context: NodeContext, final: Bool) async throws -> [Output]
}

extension TransformNode {
    public func flushDeadline() -> Date? { nil }
    public func flush(_ context: NodeContext, final: Bool) async throws -> [Output] { [] }
}

/// What a transform or a sink holds open for the life of its flow (a client, a database of its
/// own) is opened in `start` and let go in `close`, both called by the engine, never in an
/// initialiser or a `deinit`. When a flow starts, every transform and sink is started before any
/// source runs; when it stops, a node is closed once its input has ended and its last message is
/// handled (a transform after its final `flush`, a sink after its last `write`) and before the
/// nodes it feeds see their input end: so a flow closes in wiring order, sources first, sinks
/// last, and the hub's store after every flow (`FlowLifecycleTests`).
///
/// `start` failing stops the flow from starting, with the error. `close` is called once for each
/// node whose `start` returned, even when the flow is abandoned; its error is logged.
public protocol NodeLifecycle: Sendable {
    func start(_ context: NodeContext) async throws
    func close(_ context: NodeContext) async throws
}

extension NodeLifecycle {
    public func start(_ context: NodeContext) async throws {}
    public func close(_ context: NodeContext) async throws {}
}

/// A transform that takes a whole batch at once, for node types whose work per message is small
/// enough that calling them once per message would cost more than the work (the engine calls a
/// plain `TransformNode` once per message of the batches it takes).
///
/// `process(batch:)` returns one list of outputs per input message, in order; an output derives
/// from its input as `process`'s do. If it throws, nothing it did may count: the engine then runs
/// the batch's messages through `process` one at a time, so the one at fault alone is retried and
/// dead-lettered. Batches whose messages carry a singleton source's lease go one at a time.
public protocol BatchTransformNode: TransformNode {
    func process(batch: [Message], _ context: NodeContext) async throws -> [[Output]]
}

/// A transform that changes each message where it lies, or drops it, and never makes more than one
/// message of one (`map`, `filter`). The engine runs a whole batch through `apply` without copying
/// a message: one that goes on leaves by `out`, in order.
///
/// `apply` returns whether the message goes on. If it throws, it must have left the message as it
/// was: the engine then takes that message the slow way (`process`, retries, the errors port, the
/// dead letters) and the rest of the batch goes on without it. Messages carrying a singleton
/// source's lease go through `process` one at a time.
public protocol InPlaceTransformNode: TransformNode {
    func apply(_ message: inout Message, _ context: NodeContext) throws -> Bool
}

extension InPlaceTransformNode {
    public func process(_ message: Message, _ context: NodeContext) async throws -> [Output] {
        var message = message
        return try apply(&message, context) ? [.out(message)] : []
    }
}

/// A node that commits messages somewhere, in batches. When `write` returns the batch is durable;
/// only then are the sources told.
public protocol SinkNode: NodeLifecycle {
    var batching: Batching { get }
    func write(_ batch: [Message], _ context: NodeContext) async throws
}

/// A source whose messages a flow test's `input` can stand for: each input goes through the same
/// conversion as what the source receives from outside (parsing, the readings mapping), so the test
/// covers it. A conversion that fails is a dead letter, as it is in the running source.
public protocol TestInputSource: SourceNode {
    func message(fromTestInput input: Message, at now: Date) throws -> Message
}

/// A sink that talks to a server (`external` in its spec): flow tests record what it would send —
/// `testRecord(message)` — instead of sending it.
public protocol RecordingSink: SinkNode {
    func testRecord(_ message: Message) throws -> JSONValue
}

/// How a sink wants its input grouped: up to `size` messages, waiting at most `flushInterval` for a
/// batch to fill once its first message is there.
public struct Batching: Sendable, Equatable {
    public var size: Int
    public var flushInterval: Duration

    public init(size: Int, flushInterval: Duration) {
        self.size = max(1, size)
        self.flushInterval = flushInterval
    }

    public static let single = Batching(size: 1, flushInterval: .zero)
}

/// What a running node can reach: who it is, the store, the clock and a logger.
public struct NodeContext: Sendable {
    public var flow: String
    public var node: String
    public var tenant: String
    public var store: any Store
    public var clock: any HubClock
    public var logger: Logger
    /// For node types that count more than the engine does (requests made, readings stored).
    public var metrics: HubMetrics
    /// In flow tests: the canned answers connectors use instead of the network.
    public var cannedAnswers: CannedAnswers? = nil
    /// Work to do once messages are committed; the flow waits for it before it ends.
    public var afterCommit = AfterCommitWork()
    /// The hub's webhook endpoints (for `webhook.in`).
    public var webhooks: WebhookRoutes? = nil
    /// The hub's named exports (for `export`).
    public var exports = ExportRoutes()
    /// The node's status, for what it reports of its own work (`NodeStatus.report`); nil outside a flow.
    public var status: NodeStatus? = nil

    /// The `source` of the readings this node makes: `flow/node`.
    public var readingSource: String { "\(flow)/\(node)" }

    public init(
        flow: String, node: String, tenant: String, store: any Store, clock: any HubClock, logger: Logger,
        metrics: HubMetrics, cannedAnswers: CannedAnswers? = nil, afterCommit: AfterCommitWork = AfterCommitWork(),
        webhooks: WebhookRoutes? = nil, exports: ExportRoutes = ExportRoutes()
    ) {
        self.exports = exports
        self.afterCommit = afterCommit
        self.webhooks = webhooks
        self.flow = flow
        self.node = node
        self.tenant = tenant
        self.store = store
        self.clock = clock
        self.logger = logger
        self.metrics = metrics
        self.cannedAnswers = cannedAnswers
    }

    /// The checkpoint this node saved under `key`, if any.
    public func checkpoint(_ key: String) async throws -> String? {
        try await store.checkpoint(CheckpointKey(tenant: tenant, flow: flow, node: node, key: key))?.value
    }

    public func saveCheckpoint(_ key: String, _ value: String) async throws {
        try await store.saveCheckpoint(CheckpointKey(tenant: tenant, flow: flow, node: node, key: key), value: value)
    }

    /// Stores `message` as a dead letter of this node (or of `node`, the one a flow test's input
    /// stands for) with `reason`; returns its id. The one place a dead letter is made.
    @discardableResult
    public func deadLetter(_ message: JSONValue, reason: String, attempts: Int = 1, node: String? = nil) async throws -> Int64 {
        try await store.addDeadLetter(
            NewDeadLetter(tenant: tenant, flow: flow, node: node ?? self.node, error: reason, message: message, attempts: attempts))
    }
}

/// A source's context: a node context plus the way to send messages into the flow.
public struct SourceContext: Sendable {
    public var node: NodeContext
    /// Sends a batch on, moving it out of the array it is given.
    let emitter: @Sendable (inout [Message]) async throws -> Void
    let room: @Sendable () -> Int
    let roomWaiter: @Sendable () async -> Void

    init(
        node: NodeContext, emitter: @escaping @Sendable (inout [Message]) async throws -> Void, room: @escaping @Sendable () -> Int = { .max },
        waitForRoom: @escaping @Sendable () async -> Void = {}
    ) {
        self.node = node
        self.emitter = emitter
        self.room = room
        roomWaiter = waitForRoom
    }

    /// Returns once every queue the source feeds has room (at once if they have), or when the task
    /// is cancelled: woken when the room is made, never by polling. Room found may be taken by
    /// another sender before this source sends; `emit` then waits as usual.
    public func waitForRoom() async { await roomWaiter() }

    /// How many messages the source can send now without waiting (the free places in the queues it
    /// feeds): a source that must answer quickly (a webhook) refuses rather than wait for long.
    public var freeRoom: Int { room() }

    /// Sends messages that derive from one input into the flow, as one batch, waiting while the first
    /// node's queue is full (backpressure). The returned delivery settles once all of them are committed.
    @discardableResult
    public func emit(_ messages: consuming [Message]) async throws -> Delivery {
        let delivery = Delivery()
        defer { delivery.seal() }
        try await send(consume messages, tracking: { _ in delivery })
        return delivery
    }

    @discardableResult
    public func emit(_ message: Message) async throws -> Delivery {
        try await emit([message])
    }

    /// Sends messages of as many inputs (a burst of MQTT messages, the rows of a file) into the flow
    /// as one batch; each has its own delivery, in order, which settles once it is committed.
    public func emit(each messages: consuming [Message]) async throws -> [Delivery] {
        let deliveries = messages.map { _ in Delivery() }
        defer { for d in deliveries { d.seal() } }
        try await send(consume messages, tracking: { deliveries[$0] })
        return deliveries
    }

    /// Sends `messages` on: the flow's first queue gets the only reference to the batch, so the
    /// first node can change its messages where they lie.
    private func send(_ messages: consuming [Message], tracking delivery: (Int) -> Delivery) async throws {
        guard !messages.isEmpty else { return }
        for i in messages.indices {
            let d = delivery(i)
            messages[i].delivery = d
            d.retain()
        }
        // When the flow is stopping, what could not be sent is released as failed by the engine.
        try await emitter(&messages)
    }

    public var clock: any HubClock { node.clock }
    public var logger: Logger { node.logger }
}
