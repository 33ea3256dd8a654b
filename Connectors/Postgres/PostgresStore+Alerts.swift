import EnchufeCore
import Foundation
import PostgresNIO

/// The `alert` nodes' state and changes of state, as SQLite's: a save is one transaction whose
/// conditional upsert (`WHERE version = ...`, or `DO NOTHING` for a first save) says whether this
/// writer was first.
extension PostgresStore {
    static let alertColumns =
        "tenant, flow, node, series, quantity, name, message, raised, since, pending_since, last_ts, last_end, value, version, updated_at"
    static let alertEventColumns = "id, tenant, flow, node, series, quantity, name, message, raised, at, since, value, recorded_at"

    public func alert(_ key: AlertKey) async throws -> AlertState? {
        try await withConnection { connection in
            try await Self.alertStates(connection.query(
                """
                SELECT \(unescaped: Self.alertColumns) FROM alerts
                WHERE tenant = \(key.tenant) AND flow = \(key.flow) AND node = \(key.node) AND series = \(key.series) AND quantity = \(key.quantity)
                """, logger: self.logger)).first
        }
    }

    public func saveAlert(_ state: AlertState, events: [AlertEvent]) async throws -> Bool {
        let s = state, k = state.key
        return try await withTransaction { connection in
            let rows: PostgresRowSequence
            if s.version == 0 {
                rows = try await connection.query(
                    """
                    INSERT INTO alerts (\(unescaped: Self.alertColumns))
                    VALUES (\(k.tenant), \(k.flow), \(k.node), \(k.series), \(k.quantity), \(s.name), \(s.message), \(s.raised),
                            \(s.since), \(s.pendingSince), \(s.lastTs), \(s.lastEnd), \(s.value), \(s.version + 1), \(s.updatedAt))
                    ON CONFLICT (tenant, flow, node, series, quantity) DO NOTHING
                    RETURNING 1
                    """, logger: self.logger)
            } else {
                rows = try await connection.query(
                    """
                    UPDATE alerts SET name = \(s.name), message = \(s.message), raised = \(s.raised), since = \(s.since),
                        pending_since = \(s.pendingSince), last_ts = \(s.lastTs), last_end = \(s.lastEnd), value = \(s.value),
                        version = \(s.version + 1), updated_at = \(s.updatedAt)
                    WHERE tenant = \(k.tenant) AND flow = \(k.flow) AND node = \(k.node) AND series = \(k.series)
                      AND quantity = \(k.quantity) AND version = \(s.version)
                    RETURNING 1
                    """, logger: self.logger)
            }
            var saved = false
            for try await _ in rows { saved = true }
            guard saved else { return false }
            for e in events {
                try await connection.query(
                    """
                    INSERT INTO alert_events (tenant, flow, node, series, quantity, name, message, raised, at, since, value, recorded_at)
                    VALUES (\(e.key.tenant), \(e.key.flow), \(e.key.node), \(e.key.series), \(e.key.quantity), \(e.name), \(e.message),
                            \(e.raised), \(e.at), \(e.since), \(e.value), \(e.recordedAt))
                    """, logger: self.logger)
            }
            return true
        }
    }

    public func alerts(tenant: String?) async throws -> [AlertState] {
        try await withConnection { connection in
            if let tenant {
                return try await Self.alertStates(connection.query(
                    "SELECT \(unescaped: Self.alertColumns) FROM alerts WHERE tenant = \(tenant) ORDER BY raised DESC, name, series, quantity, flow, node",
                    logger: self.logger))
            }
            return try await Self.alertStates(connection.query(
                "SELECT \(unescaped: Self.alertColumns) FROM alerts ORDER BY raised DESC, name, series, quantity, flow, node", logger: self.logger))
        }
    }

    public func alertEvents(tenant: String?, limit: Int) async throws -> [AlertEvent] {
        try await withConnection { connection in
            if let tenant {
                return try await Self.alertEvents(connection.query(
                    "SELECT \(unescaped: Self.alertEventColumns) FROM alert_events WHERE tenant = \(tenant) ORDER BY id DESC LIMIT \(limit)",
                    logger: self.logger))
            }
            return try await Self.alertEvents(connection.query(
                "SELECT \(unescaped: Self.alertEventColumns) FROM alert_events ORDER BY id DESC LIMIT \(limit)", logger: self.logger))
        }
    }

    public func purgeAlertEvents(before: Date) async throws -> Int {
        try await withConnection { connection in
            let rows = try await connection.query(
                "WITH d AS (DELETE FROM alert_events WHERE recorded_at < \(before) RETURNING 1) SELECT count(*) FROM d", logger: self.logger)
            for try await count in rows.decode(Int64.self) { return Int(count) }
            return 0
        }
    }

    static func alertStates(_ rows: PostgresRowSequence) async throws -> [AlertState] {
        var result: [AlertState] = []
        for try await (tenant, flow, node, series, quantity, name, message, raised, since, pending, lastTs, lastEnd, value, version, updated)
            in rows.decode((String, String, String, String, String, String, String, Bool, Date?, Date?, Date?, Date?, Double?, Int, Date).self)
        {
            result.append(AlertState(
                key: AlertKey(tenant: tenant, flow: flow, node: node, series: series, quantity: quantity), name: name, message: message,
                raised: raised, since: since.map(roundedToMillis), pendingSince: pending.map(roundedToMillis),
                lastTs: lastTs.map(roundedToMillis), lastEnd: lastEnd.map(roundedToMillis), value: value, version: version,
                updatedAt: roundedToMillis(updated)))
        }
        return result
    }

    static func alertEvents(_ rows: PostgresRowSequence) async throws -> [AlertEvent] {
        var result: [AlertEvent] = []
        for try await (id, tenant, flow, node, series, quantity, name, message, raised, at, since, value, recorded) in rows.decode(
            (Int64, String, String, String, String, String, String, String, Bool, Date, Date, Double, Date).self)
        {
            result.append(AlertEvent(
                id: id, key: AlertKey(tenant: tenant, flow: flow, node: node, series: series, quantity: quantity), name: name,
                message: message, raised: raised, at: roundedToMillis(at), since: roundedToMillis(since), value: value,
                recordedAt: roundedToMillis(recorded)))
        }
        return result
    }
}
