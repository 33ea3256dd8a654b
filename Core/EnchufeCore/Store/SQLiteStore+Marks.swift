import Foundation
import GRDB

/// The store's request marks (`Store.claimMark`) on SQLite: one table, a claim being one
/// `INSERT ... ON CONFLICT DO UPDATE ... WHERE expired` whose change count says who won.
extension SQLiteStore {
    public func claimMark(_ key: CheckpointKey, value: String, expiresAt: Date) async throws -> Bool {
        let now = Self.millis(Date())
        return try await writer.write { db in
            try db.execute(
                sql: """
                    INSERT INTO request_marks (tenant, flow, node, key, value, expires_at) VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT (tenant, flow, node, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at
                    WHERE request_marks.expires_at <= ?
                    """,
                arguments: [key.tenant, key.flow, key.node, key.key, value, Self.millis(expiresAt), now])
            return db.changesCount == 1
        }
    }

    public func mark(_ key: CheckpointKey, now: Date) async throws -> String? {
        try await writer.read { db in
            try String.fetchOne(
                db, sql: "SELECT value FROM request_marks WHERE tenant = ? AND flow = ? AND node = ? AND key = ? AND expires_at > ?",
                arguments: [key.tenant, key.flow, key.node, key.key, Self.millis(now)])
        }
    }

    public func updateMark(_ key: CheckpointKey, value: String, expiresAt: Date) async throws {
        try await writer.write { db in
            try db.execute(
                sql: "UPDATE request_marks SET value = ?, expires_at = ? WHERE tenant = ? AND flow = ? AND node = ? AND key = ?",
                arguments: [value, Self.millis(expiresAt), key.tenant, key.flow, key.node, key.key])
        }
    }

    public func releaseMark(_ key: CheckpointKey) async throws {
        try await writer.write { db in
            try db.execute(
                sql: "DELETE FROM request_marks WHERE tenant = ? AND flow = ? AND node = ? AND key = ?",
                arguments: [key.tenant, key.flow, key.node, key.key])
        }
    }

    public func purgeExpiredMarks(now: Date) async throws -> Int {
        try await writer.write { db in
            try db.execute(sql: "DELETE FROM request_marks WHERE expires_at <= ?", arguments: [Self.millis(now)])
            return db.changesCount
        }
    }
}
