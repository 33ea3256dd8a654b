import Foundation

// The hub's status as the API shows it (`/api/v1/flows`, read by the status page): the engine's
// typed snapshot (`HubStatus`) rendered here, so the JSON's names live with the routes.

extension HubStatus {
    /// `{"flows": [...], "skipped": [...], "last_reload": {...}}`; `last_reload` only once there was one.
    var json: JSONValue {
        var answer: [String: JSONValue] = ["flows": .array(flows.map { $0.json(at: at) }), "skipped": .array(skipped.map(\.json))]
        if let lastReload { answer["last_reload"] = lastReload.json() }
        return .object(answer)
    }
}

extension HubStatus.Skipped {
    var json: JSONValue {
        switch self {
        case .flow(let flow, let node, let reason):
            return ["flow": .string(flow), "node": .string(node), "status": "skipped", "reason": .string(reason)]
        case .file(let file, let reasons):
            return ["file": .string(file), "status": "skipped", "reason": .string(reasons.first ?? "the file has errors"), "errors": .array(reasons.map(JSONValue.string))]
        }
    }
}

extension FlowStatus {
    /// The flow with its nodes and wires; a source's lag is measured to `now`.
    func json(at now: Date) -> JSONValue {
        var flow: [String: JSONValue] = [
            "id": .string(id), "file": .string(file), "tenant": .string(tenant),
            "description": description.map(JSONValue.string) ?? .null, "status": .string(state.rawValue),
            "started_at": startedAt.map { .string(ISO8601.string($0)) } ?? .null,
            "nodes": .array(nodes.map { $0.json(at: now) }),
            "wires": .array(wires.map { ["from": .string($0.from), "port": .string($0.port), "to": .string($0.to)] }),
        ]
        if let reloadErrors { flow["reload_error"] = .array(reloadErrors.map(JSONValue.string)) }
        return .object(flow)
    }
}

extension FlowStatus.Node {
    func json(at now: Date) -> JSONValue {
        let st = status
        var o: [String: JSONValue] = [
            "id": .string(id), "type": .string(type), "status": .string(st.state.rawValue), "kind": .string(kind),
            "messages_in": .number(Double(st.messagesIn)), "messages_out": .number(Double(st.messagesOut)),
            "errors": .number(Double(st.errors)), "retries": .number(Double(st.retries)), "dead_letters": .number(Double(st.deadLetters)),
            "line": .number(Double(line)),
        ]
        if let queue {
            o["queue_depth"] = .number(Double(queue.depth))
            o["queue_size"] = .number(Double(queue.size))
        }
        if let e = st.lastError, let at = st.lastErrorAt { o["last_error"] = ["message": .string(e), "at": .string(ISO8601.string(at))] }
        if let next = st.nextRun { o["next_run"] = .string(ISO8601.string(next)) }
        if let details = st.details { o["details"] = details }
        if st.underLease { o["lease"] = st.leaseFence.map { ["held_here": true, "fence": .number(Double($0))] } ?? ["held_here": false] }
        if let newest = st.newestData {
            o["newest_data"] = .string(ISO8601.string(newest))
            o["lag_seconds"] = .number(max(0, now.timeIntervalSince(newest)).rounded())
        }
        return .object(o)
    }
}

extension Hub.ReloadReport {
    /// The report; with a tenant, only what concerns that tenant's flows.
    func json(tenant: String? = nil) -> JSONValue {
        func mine(_ flow: String) -> Bool { tenant == nil || tenants[flow]?.contains(tenant!) == true }
        func ids(_ list: [String]) -> JSONValue { .array(list.filter(mine).map(JSONValue.string)) }
        return [
            "at": .string(ISO8601.string(at)),
            "started": ids(started), "restarted": ids(restarted), "stopped": ids(stopped), "unchanged": ids(unchanged),
            "refused": .object(refused.filter { mine($0.key) }.mapValues { .array($0.map(JSONValue.string)) }),
            "not_started": .array(notStarted.filter { mine($0.flow) }.map { ["flow": .string($0.flow), "node": .string($0.node), "reason": .string($0.reason)] }),
        ]
    }
}
