import Foundation

// The status of a running flow, for `/api/v1/flows`, the status page and `/metrics`.
extension FlowRunner {
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

    /// Depth of every node's input queue, for `/metrics`.
    func recordQueueDepths() {
        for node in nodes { node.metrics.queueDepth.record(node.input?.count ?? 0) }
    }
}
