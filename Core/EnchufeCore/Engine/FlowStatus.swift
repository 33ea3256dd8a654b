import Foundation

/// What the running hub shows of itself (`/api/v1/flows`, the status page), taken at one instant.
/// A typed value: the HTTP layer renders it (`StatusJSON`), the engine only gathers it.
public struct HubStatus: Sendable {
    /// The running flows, in the order they were started.
    public var flows: [FlowStatus]
    /// Flows not run and flow files refused, with why (shown to the operator, not to a tenant).
    public var skipped: [Skipped]
    /// The last reload, if any (shown to the operator, not to a tenant).
    public var lastReload: Hub.ReloadReport?
    /// When it was taken (a source's lag is measured to this instant).
    public var at: Date

    public enum Skipped: Sendable {
        /// A flow that could not start, at one of its nodes.
        case flow(String, node: String, reason: String)
        /// A flow file that was refused, with every problem found in it.
        case file(String, reasons: [String])
    }
}

/// One running flow: its nodes' status and its wires; the flow's state is its worst node's.
public struct FlowStatus: Sendable {
    public enum State: String, Sendable {
        case stopped, running, waiting, failing
    }

    public struct Node: Sendable {
        public var id: String
        public var type: String
        public var kind: String
        /// Its line in the flow file.
        public var line: Int
        public var status: NodeStatus.Snapshot
        /// Messages in its input queue and the queue's size (nodes with an input).
        public var queue: (depth: Int, size: Int)?
    }

    public struct Wire: Sendable {
        public var from: String
        public var port: String
        public var to: String
    }

    public var id: String
    public var file: String
    public var tenant: String
    public var description: String?
    public var state: State
    public var startedAt: Date?
    /// Why the last change of its file was refused (it runs as it was), if it was.
    public var reloadErrors: [String]?
    public var nodes: [Node]
    public var wires: [Wire]
}

// The status of a running flow, for `/api/v1/flows`, the status page and `/metrics`.
extension FlowRunner {
    /// The flow's nodes (state, counters, queue, last error, next run, newest data of sources) and
    /// wires; the flow's state is its worst node's, a source waiting for its next turn counting as running.
    func status(startedAt: Date?, reloadErrors: [String]?) -> FlowStatus {
        let rank: [FlowStatus.State] = [.stopped, .running, .waiting, .failing]
        var worst = 0
        var allStopped = true
        var nodeStatuses: [FlowStatus.Node] = []
        var wires: [FlowStatus.Wire] = []
        for node in nodes {
            let st = node.metrics.status.snapshot
            if st.state != .stopped { allStopped = false }
            // A source waiting for its next turn is as it should be; waiting for a server is not.
            let state: FlowStatus.State = st.state == .waiting && st.nextRun != nil ? .running : FlowStatus.State(rawValue: st.state.rawValue) ?? .stopped
            worst = max(worst, rank.firstIndex(of: state) ?? 0)
            nodeStatuses.append(FlowStatus.Node(
                id: node.definition.id, type: node.definition.type, kind: node.kind, line: node.definition.location.line, status: st,
                queue: node.input.map { ($0.count, $0.capacity) }))
            for (port, targets) in node.definition.wires.sorted(by: { $0.key < $1.key }) {
                for t in targets { wires.append(FlowStatus.Wire(from: node.definition.id, port: port, to: t.node)) }
            }
        }
        return FlowStatus(
            id: definition.id, file: definition.file, tenant: definition.tenant, description: definition.description,
            state: allStopped && !nodes.isEmpty ? .stopped : rank[worst], startedAt: startedAt, reloadErrors: reloadErrors,
            nodes: nodeStatuses, wires: wires)
    }

    /// Depth of every node's input queue, for `/metrics`.
    func recordQueueDepths() {
        for node in nodes { node.metrics.queueDepth.record(node.input?.count ?? 0) }
    }
}
