import Foundation
import GRDB

/// The store's named values (`NamedValueStore`) on SQLite: one table, a claim being one
/// `INSERT ... ON CONFLICT DO UPDATE ... WHERE expired` whose change count says who won.
extension SQLiteStore {
    public func value(_ key: NamedKey, now: Date) async throws -> String? {
        try await writer.read { db in
            try String.fetchOne(
                db,
                sql: """
                    SELECT value FROM named_values WHERE tenant = ? AND namespace = ? AND name = ?
                    AND (expires_at IS NULL OR expires_at > ?)
                    """,
                arguments: [key.tenant, key.namespace, key.name, Self.millis(now)])
        }
    }

    public func setValue(_ key: NamedKey, _ value: String, expiresAt: Date?) async throws {
        let lease = Lease.current
        let now = Self.millis(Date())
        try await writer.write { db in
            if let lease { try Self.checkHeld(lease, now: now, db) }
            try db.execute(
                sql: """
                    INSERT INTO named_values (tenant, namespace, name, value, expires_at) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (tenant, namespace, name) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at
                    """,
                arguments: [key.tenant, key.namespace, key.name, value, expiresAt.map(Self.millis)])
        }
    }

    public func claim(_ key: NamedKey, value: String, expiresAt: Date?) async throws -> Bool {
        let now = Self.millis(Date())
        return try await writer.write { db in
            try db.execute(
                sql: """
                    INSERT INTO named_values (tenant, namespace, name, value, expires_at) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (tenant, namespace, name) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at
                    WHERE named_values.expires_at <= ?
                    """,
                arguments: [key.tenant, key.namespace, key.name, value, expiresAt.map(Self.millis), now])
            return db.changesCount == 1
        }
    }

    public func removeValue(_ key: NamedKey) async throws {
        try await writer.write { db in
            try db.execute(
                sql: "DELETE FROM named_values WHERE tenant = ? AND namespace = ? AND name = ?",
                arguments: [key.tenant, key.namespace, key.name])
        }
    }

    public func purgeExpiredValues(now: Date) async throws -> Int {
        try await writer.write { db in
            try db.execute(sql: "DELETE FROM named_values WHERE expires_at <= ?", arguments: [Self.millis(now)])
            return db.changesCount
        }
    }
}
