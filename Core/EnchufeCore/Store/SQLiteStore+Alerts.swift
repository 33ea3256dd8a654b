import Foundation
import GRDB

/// The `alert` nodes' state and changes of state on SQLite: a save is one transaction whose
/// `UPDATE ... WHERE version = ?` (or `INSERT ... ON CONFLICT DO NOTHING` for a first save) says
/// whether this writer was first.
extension SQLiteStore {
    public func alert(_ key: AlertKey) async throws -> AlertState? {
        try await writer.read { db in
            try Row.fetchOne(
                db, sql: "SELECT * FROM alerts WHERE tenant = ? AND flow = ? AND node = ? AND series = ? AND quantity = ?",
                arguments: [key.tenant, key.flow, key.node, key.series, key.quantity]
            ).map(Self.alertState)
        }
    }

    public func saveAlert(_ state: AlertState, events: [AlertEvent]) async throws -> Bool {
        try await writer.write { db in
            let k = state.key
            let values: [(any DatabaseValueConvertible)?] = [
                state.name, state.message, state.raised, state.since.map(Self.millis), state.pendingSince.map(Self.millis),
                state.lastTs.map(Self.millis), state.lastEnd.map(Self.millis), state.value, state.version + 1,
                Self.millis(state.updatedAt),
            ]
            let keyValues: [(any DatabaseValueConvertible)?] = [k.tenant, k.flow, k.node, k.series, k.quantity]
            if state.version == 0 {
                try db.execute(
                    sql: """
                        INSERT INTO alerts (tenant, flow, node, series, quantity, name, message, raised, since, pending_since,
                                            last_ts, last_end, value, version, updated_at)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        ON CONFLICT (tenant, flow, node, series, quantity) DO NOTHING
                        """,
                    arguments: StatementArguments(keyValues + values))
            } else {
                try db.execute(
                    sql: """
                        UPDATE alerts SET name = ?, message = ?, raised = ?, since = ?, pending_since = ?, last_ts = ?,
                                          last_end = ?, value = ?, version = ?, updated_at = ?
                        WHERE tenant = ? AND flow = ? AND node = ? AND series = ? AND quantity = ? AND version = ?
                        """,
                    arguments: StatementArguments(values + keyValues + [state.version]))
            }
            guard db.changesCount == 1 else { return false }
            for e in events {
                try db.execute(
                    sql: """
                        INSERT INTO alert_events (tenant, flow, node, series, quantity, name, message, raised, at, since, value, recorded_at)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        e.key.tenant, e.key.flow, e.key.node, e.key.series, e.key.quantity, e.name, e.message, e.raised,
                        Self.millis(e.at), Self.millis(e.since), e.value, Self.millis(e.recordedAt),
                    ])
            }
            return true
        }
    }

    public func alerts(tenant: String?) async throws -> [AlertState] {
        let order = "ORDER BY raised DESC, name, series, quantity, flow, node"
        return try await writer.read { db in
            if let tenant {
                return try Row.fetchAll(db, sql: "SELECT * FROM alerts WHERE tenant = ? \(order)", arguments: [tenant]).map(Self.alertState)
            }
            return try Row.fetchAll(db, sql: "SELECT * FROM alerts \(order)").map(Self.alertState)
        }
    }

    public func alertEvents(tenant: String?, limit: Int) async throws -> [AlertEvent] {
        try await writer.read { db in
            if let tenant {
                return try Row.fetchAll(db, sql: "SELECT * FROM alert_events WHERE tenant = ? ORDER BY id DESC LIMIT ?", arguments: [tenant, limit])
                    .map(Self.alertEvent)
            }
            return try Row.fetchAll(db, sql: "SELECT * FROM alert_events ORDER BY id DESC LIMIT ?", arguments: [limit]).map(Self.alertEvent)
        }
    }

    public func purgeAlertEvents(before: Date) async throws -> Int {
        try await writer.write { db in
            try db.execute(sql: "DELETE FROM alert_events WHERE recorded_at < ?", arguments: [Self.millis(before)])
            return db.changesCount
        }
    }

    static func alertKey(_ row: Row) -> AlertKey {
        AlertKey(tenant: row["tenant"], flow: row["flow"], node: row["node"], series: row["series"], quantity: row["quantity"])
    }

    static func alertState(_ row: Row) -> AlertState {
        func date(_ column: String) -> Date? { (row[column] as Int64?).map(Self.date) }
        return AlertState(
            key: alertKey(row), name: row["name"], message: row["message"], raised: row["raised"], since: date("since"),
            pendingSince: date("pending_since"), lastTs: date("last_ts"), lastEnd: date("last_end"), value: row["value"],
            version: row["version"], updatedAt: Self.date(row["updated_at"]))
    }

    static func alertEvent(_ row: Row) -> AlertEvent {
        AlertEvent(
            id: row["id"], key: alertKey(row), name: row["name"], message: row["message"], raised: row["raised"],
            at: Self.date(row["at"]), since: Self.date(row["since"]), value: row["value"], recordedAt: Self.date(row["recorded_at"]))
    }
}
