import Foundation
import GRDB

// The SQLite store's tables and their migrations.
extension SQLiteStore {
    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("001-initial") { db in
            try db.execute(sql: """
                CREATE TABLE readings (
                    tenant TEXT NOT NULL,
                    series TEXT NOT NULL,
                    quantity TEXT NOT NULL,
                    ts INTEGER NOT NULL,              -- milliseconds since the epoch, UTC
                    resolution TEXT NOT NULL,
                    value REAL NOT NULL,
                    unit TEXT NOT NULL,
                    quality TEXT NOT NULL,
                    source TEXT NOT NULL,
                    revision INTEGER NOT NULL,
                    seq INTEGER NOT NULL,
                    updated_at INTEGER NOT NULL,
                    PRIMARY KEY (tenant, series, quantity, ts)
                ) WITHOUT ROWID;
                CREATE INDEX readings_changes ON readings (tenant, seq);
                CREATE TABLE sequences (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
                INSERT INTO sequences (name, value) VALUES ('readings', 0);
                CREATE TABLE supplies (
                    tenant TEXT NOT NULL,
                    cups TEXT NOT NULL,
                    valid_from TEXT NOT NULL,         -- '' when open
                    valid_to TEXT,
                    tariff TEXT,
                    zone TEXT,
                    distributor_code TEXT,
                    point_type INTEGER,
                    contracted_power_kw TEXT NOT NULL, -- JSON array, one per period
                    coefficient REAL,
                    community TEXT,
                    raw TEXT,
                    updated_at INTEGER NOT NULL,
                    PRIMARY KEY (tenant, cups, valid_from)
                );
                CREATE TABLE checkpoints (
                    tenant TEXT NOT NULL,
                    flow TEXT NOT NULL,
                    node TEXT NOT NULL,
                    key TEXT NOT NULL,
                    value TEXT NOT NULL,
                    updated_at INTEGER NOT NULL,
                    PRIMARY KEY (tenant, flow, node, key)
                );
                CREATE TABLE dead_letters (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    tenant TEXT NOT NULL,
                    flow TEXT NOT NULL,
                    node TEXT NOT NULL,
                    error TEXT NOT NULL,
                    message TEXT NOT NULL,            -- JSON
                    attempts INTEGER NOT NULL,
                    created_at INTEGER NOT NULL,
                    replayed_at INTEGER
                );
                CREATE TABLE api_keys (
                    id TEXT PRIMARY KEY,
                    tenant TEXT NOT NULL,
                    name TEXT NOT NULL,
                    scopes TEXT NOT NULL,             -- space-separated
                    hash TEXT NOT NULL UNIQUE,
                    created_at INTEGER NOT NULL,
                    revoked_at INTEGER,
                    last_used_at INTEGER
                );
                CREATE TABLE audit_log (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    at INTEGER NOT NULL,
                    tenant TEXT NOT NULL,
                    actor TEXT NOT NULL,
                    action TEXT NOT NULL,
                    detail TEXT NOT NULL              -- JSON
                );
                """)
        }
        migrator.registerMigration("002-instances") { db in
            try db.execute(sql: """
                CREATE TABLE leases (
                    name TEXT PRIMARY KEY,
                    holder TEXT NOT NULL,
                    fence INTEGER NOT NULL,
                    expires_at INTEGER NOT NULL
                );
                CREATE TABLE instances (
                    id TEXT PRIMARY KEY,
                    host TEXT NOT NULL,
                    pid INTEGER NOT NULL,
                    http TEXT NOT NULL,
                    started_at INTEGER NOT NULL,
                    heartbeat_at INTEGER NOT NULL
                );
                """)
        }
        migrator.registerMigration("003-request-marks") { db in
            try db.execute(sql: """
                CREATE TABLE request_marks (
                    tenant TEXT NOT NULL,
                    flow TEXT NOT NULL,
                    node TEXT NOT NULL,
                    key TEXT NOT NULL,
                    value TEXT NOT NULL,
                    expires_at INTEGER NOT NULL,
                    PRIMARY KEY (tenant, flow, node, key)
                );
                CREATE INDEX request_marks_expiry ON request_marks (expires_at);
                """)
        }
        // Named values (`NamedValueStore`) take over the request marks (a webhook's, under
        // `webhook/FLOW/NODE`) and the Datadis ledger, which lived among the checkpoints under the
        // made-up flow id `datadis-ledger`. A NULL expiry never expires.
        migrator.registerMigration("004-named-values") { db in
            try db.execute(sql: """
                CREATE TABLE named_values (
                    tenant TEXT NOT NULL,
                    namespace TEXT NOT NULL,
                    name TEXT NOT NULL,
                    value TEXT NOT NULL,
                    expires_at INTEGER,               -- milliseconds since the epoch, UTC; NULL: never
                    PRIMARY KEY (tenant, namespace, name)
                );
                CREATE INDEX named_values_expiry ON named_values (expires_at) WHERE expires_at IS NOT NULL;
                INSERT INTO named_values (tenant, namespace, name, value, expires_at)
                    SELECT tenant, 'webhook/' || flow || '/' || node, key, value, expires_at FROM request_marks;
                INSERT INTO named_values (tenant, namespace, name, value, expires_at)
                    SELECT tenant, 'datadis-ledger/' || node, key, value, NULL FROM checkpoints WHERE flow = 'datadis-ledger';
                DELETE FROM checkpoints WHERE flow = 'datadis-ledger';
                DROP TABLE request_marks;
                """)
        }
        // The `alert` nodes' state (one row per node and series watched; `version` makes a save
        // conditional on what was read) and their changes of state.
        migrator.registerMigration("005-alerts") { db in
            try db.execute(sql: """
                CREATE TABLE alerts (
                    tenant TEXT NOT NULL,
                    flow TEXT NOT NULL,
                    node TEXT NOT NULL,
                    series TEXT NOT NULL,
                    quantity TEXT NOT NULL,
                    name TEXT NOT NULL,
                    message TEXT NOT NULL,
                    raised INTEGER NOT NULL,
                    since INTEGER,
                    pending_since INTEGER,
                    last_ts INTEGER,
                    last_end INTEGER,
                    value REAL,
                    version INTEGER NOT NULL,
                    updated_at INTEGER NOT NULL,
                    PRIMARY KEY (tenant, flow, node, series, quantity)
                );
                CREATE TABLE alert_events (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    tenant TEXT NOT NULL,
                    flow TEXT NOT NULL,
                    node TEXT NOT NULL,
                    series TEXT NOT NULL,
                    quantity TEXT NOT NULL,
                    name TEXT NOT NULL,
                    message TEXT NOT NULL,
                    raised INTEGER NOT NULL,
                    at INTEGER NOT NULL,
                    since INTEGER NOT NULL,
                    value REAL NOT NULL,
                    recorded_at INTEGER NOT NULL
                );
                CREATE INDEX alert_events_tenant ON alert_events (tenant, id);
                CREATE INDEX alert_events_recorded ON alert_events (recorded_at);
                """)
        }
        // Forecasts, every issue kept: the key ends with the model and the issue.
        migrator.registerMigration("006-forecasts") { db in
            try db.execute(sql: """
                CREATE TABLE forecasts (
                    tenant TEXT NOT NULL,
                    series TEXT NOT NULL,
                    quantity TEXT NOT NULL,
                    ts INTEGER NOT NULL,
                    resolution TEXT NOT NULL,
                    value REAL NOT NULL,
                    unit TEXT NOT NULL,
                    model TEXT NOT NULL,
                    issued_at INTEGER NOT NULL,
                    PRIMARY KEY (tenant, series, quantity, ts, model, issued_at)
                );
                CREATE INDEX forecasts_issued ON forecasts (issued_at);
                """)
        }
        // A supply's PV system (`pv`, JSON), for the solar forecasts.
        migrator.registerMigration("007-supply-pv") { db in
            try db.execute(sql: "ALTER TABLE supplies ADD COLUMN pv TEXT")
        }
        // A member's bid and ask in the community market (`market`, JSON).
        migrator.registerMigration("008-supply-market") { db in
            try db.execute(sql: "ALTER TABLE supplies ADD COLUMN market TEXT")
        }
        return migrator
    }

    @discardableResult
    public func migrate() async throws -> [String] { try await migrate(through: nil) }

    /// Applies the migrations not applied yet, up to and including `last` (nil: all of them); a test
    /// uses `last` to build an older schema and check what an upgrade carries over.
    @discardableResult
    func migrate(through last: String?) async throws -> [String] {
        let migrator = Self.migrator
        let before = try await writer.read { try migrator.appliedIdentifiers($0) }
        if let last { try migrator.migrate(writer, upTo: last) } else { try migrator.migrate(writer) }
        let after = try await writer.read { try migrator.appliedIdentifiers($0) }
        return migrator.migrations.filter { after.contains($0) && !before.contains($0) }
    }
}
