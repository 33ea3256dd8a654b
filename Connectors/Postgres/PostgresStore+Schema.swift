import EnchufeCore
import Foundation
import PostgresNIO

extension PostgresStore {
    /// Serialises migrations of several hubs starting at once against one database.
    static let migrationLock: Int64 = 0x656E_6368_7566_6532  // "enchufe2"

    /// The schema, one migration per entry, with the same names as SQLite's.
    static let migrations: [(id: String, statements: [String])] = [
        ("001-initial", [
            """
            CREATE TABLE readings (
                tenant text NOT NULL,
                series text NOT NULL,
                quantity text NOT NULL,
                ts timestamptz NOT NULL,
                resolution text NOT NULL,
                value double precision NOT NULL,
                unit text NOT NULL,
                quality text NOT NULL,
                source text NOT NULL,
                revision integer NOT NULL,
                seq bigint NOT NULL,
                updated_at timestamptz NOT NULL,
                PRIMARY KEY (tenant, series, quantity, ts)
            )
            """,
            "CREATE INDEX readings_changes ON readings (tenant, seq)",
            "CREATE TABLE sequences (name text PRIMARY KEY, value bigint NOT NULL)",
            "INSERT INTO sequences (name, value) VALUES ('readings', 0)",
            """
            CREATE TABLE supplies (
                tenant text NOT NULL,
                cups text NOT NULL,
                valid_from text NOT NULL,
                valid_to text,
                tariff text,
                zone text,
                distributor_code text,
                point_type integer,
                contracted_power_kw double precision[] NOT NULL,
                coefficient double precision,
                community text,
                raw jsonb,
                updated_at timestamptz NOT NULL,
                PRIMARY KEY (tenant, cups, valid_from)
            )
            """,
            """
            CREATE TABLE checkpoints (
                tenant text NOT NULL,
                flow text NOT NULL,
                node text NOT NULL,
                key text NOT NULL,
                value text NOT NULL,
                updated_at timestamptz NOT NULL,
                PRIMARY KEY (tenant, flow, node, key)
            )
            """,
            """
            CREATE TABLE dead_letters (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                tenant text NOT NULL,
                flow text NOT NULL,
                node text NOT NULL,
                error text NOT NULL,
                message jsonb NOT NULL,
                attempts integer NOT NULL,
                created_at timestamptz NOT NULL,
                replayed_at timestamptz
            )
            """,
            """
            CREATE TABLE api_keys (
                id text PRIMARY KEY,
                tenant text NOT NULL,
                name text NOT NULL,
                scopes text NOT NULL,
                hash text NOT NULL UNIQUE,
                created_at timestamptz NOT NULL,
                revoked_at timestamptz,
                last_used_at timestamptz
            )
            """,
            """
            CREATE TABLE audit_log (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                at timestamptz NOT NULL,
                tenant text NOT NULL,
                actor text NOT NULL,
                action text NOT NULL,
                detail jsonb NOT NULL
            )
            """,
        ]),
        (id: "002-instances", statements: [
            """
            CREATE TABLE leases (
                name text PRIMARY KEY,
                holder text NOT NULL,
                fence bigint NOT NULL,
                expires_at timestamptz NOT NULL
            )
            """,
            """
            CREATE TABLE instances (
                id text PRIMARY KEY,
                host text NOT NULL,
                pid integer NOT NULL,
                http text NOT NULL,
                started_at timestamptz NOT NULL,
                heartbeat_at timestamptz NOT NULL
            )
            """
        ]),
        (id: "003-request-marks", statements: [
            """
            CREATE TABLE request_marks (
                tenant text NOT NULL,
                flow text NOT NULL,
                node text NOT NULL,
                key text NOT NULL,
                value text NOT NULL,
                expires_at timestamptz NOT NULL,
                PRIMARY KEY (tenant, flow, node, key)
            )
            """,
            "CREATE INDEX request_marks_expiry ON request_marks (expires_at)",
        ]),
        // As SQLite's 004: named values take over the request marks and the Datadis ledger's
        // checkpoints (flow id `datadis-ledger`).
        (id: "004-named-values", statements: [
            """
            CREATE TABLE named_values (
                tenant text NOT NULL,
                namespace text NOT NULL,
                name text NOT NULL,
                value text NOT NULL,
                expires_at timestamptz,
                PRIMARY KEY (tenant, namespace, name)
            )
            """,
            "CREATE INDEX named_values_expiry ON named_values (expires_at) WHERE expires_at IS NOT NULL",
            """
            INSERT INTO named_values (tenant, namespace, name, value, expires_at)
            SELECT tenant, 'webhook/' || flow || '/' || node, key, value, expires_at FROM request_marks
            """,
            """
            INSERT INTO named_values (tenant, namespace, name, value, expires_at)
            SELECT tenant, 'datadis-ledger/' || node, key, value, NULL FROM checkpoints WHERE flow = 'datadis-ledger'
            """,
            "DELETE FROM checkpoints WHERE flow = 'datadis-ledger'",
            "DROP TABLE request_marks",
        ]),
        // As SQLite's 005: the `alert` nodes' state and their changes of state.
        (id: "005-alerts", statements: [
            """
            CREATE TABLE alerts (
                tenant text NOT NULL,
                flow text NOT NULL,
                node text NOT NULL,
                series text NOT NULL,
                quantity text NOT NULL,
                name text NOT NULL,
                message text NOT NULL,
                raised boolean NOT NULL,
                since timestamptz,
                pending_since timestamptz,
                last_ts timestamptz,
                last_end timestamptz,
                value double precision,
                version integer NOT NULL,
                updated_at timestamptz NOT NULL,
                PRIMARY KEY (tenant, flow, node, series, quantity)
            )
            """,
            """
            CREATE TABLE alert_events (
                id bigserial PRIMARY KEY,
                tenant text NOT NULL,
                flow text NOT NULL,
                node text NOT NULL,
                series text NOT NULL,
                quantity text NOT NULL,
                name text NOT NULL,
                message text NOT NULL,
                raised boolean NOT NULL,
                at timestamptz NOT NULL,
                since timestamptz NOT NULL,
                value double precision NOT NULL,
                recorded_at timestamptz NOT NULL
            )
            """,
            "CREATE INDEX alert_events_tenant ON alert_events (tenant, id)",
            "CREATE INDEX alert_events_recorded ON alert_events (recorded_at)",
        ]),
        // As SQLite's 006: forecasts, every issue kept.
        (id: "006-forecasts", statements: [
            """
            CREATE TABLE forecasts (
                tenant text NOT NULL,
                series text NOT NULL,
                quantity text NOT NULL,
                ts timestamptz NOT NULL,
                resolution text NOT NULL,
                value double precision NOT NULL,
                unit text NOT NULL,
                model text NOT NULL,
                issued_at timestamptz NOT NULL,
                PRIMARY KEY (tenant, series, quantity, ts, model, issued_at)
            )
            """,
            "CREATE INDEX forecasts_issued ON forecasts (issued_at)",
        ]),
        // As SQLite's 007: a supply's PV system.
        (id: "007-supply-pv", statements: ["ALTER TABLE supplies ADD COLUMN pv jsonb"]),
        // As SQLite's 008: a member's bid and ask in the community market.
        (id: "008-supply-market", statements: ["ALTER TABLE supplies ADD COLUMN market jsonb"]),
    ]

    /// Applies the migrations not applied yet, each in its own transaction, under an advisory lock;
    /// then makes `readings` a TimescaleDB hypertable when the extension is available.
    @discardableResult
    public func migrate() async throws -> [String] { try await migrate(through: nil) }

    /// `migrate()` up to and including the migration `last` (nil: all of them); a test uses it to
    /// build an older schema and check what an upgrade carries over.
    @discardableResult
    func migrate(through last: String?) async throws -> [String] {
        let migrations = last.flatMap { last in Self.migrations.firstIndex { $0.id == last } }.map { Self.migrations[...$0] } ?? Self.migrations[...]
        let logger = self.logger
        let applied: [String] = try await withTransaction { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.migrationLock))", logger: logger)
            try await connection.query(
                "CREATE TABLE IF NOT EXISTS schema_migrations (id text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
                logger: logger)
            var done = Set<String>()
            for try await id in try await connection.query("SELECT id FROM schema_migrations", logger: logger).decode(String.self) {
                done.insert(id)
            }
            var applied: [String] = []
            for migration in migrations where !done.contains(migration.id) {
                for statement in migration.statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query("INSERT INTO schema_migrations (id) VALUES (\(migration.id))", logger: logger)
                applied.append(migration.id)
            }
            return applied
        }
        await enableTimescale()
        return applied
    }

    /// Makes `readings` a hypertable when TimescaleDB can be used; says what it did in the startup notes.
    func enableTimescale() async {
        let logger = self.logger
        do {
            let available = try await withConnection { connection in
                try await connection.query(
                    "SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'", logger: logger
                ).collect().first?.decode(Int64.self) ?? 0
            }
            guard available > 0 else {
                setNote("TimescaleDB is not available on this server: readings is a plain table")
                return
            }
            let converted: Bool = try await withTransaction { connection in
                try await connection.query("CREATE EXTENSION IF NOT EXISTS timescaledb", logger: logger)
                let already = try await connection.query(
                    "SELECT count(*) FROM timescaledb_information.hypertables WHERE hypertable_name = 'readings' AND hypertable_schema = current_schema()",
                    logger: logger
                ).collect().first?.decode(Int64.self) ?? 0
                if already > 0 { return false }
                try await connection.query("SELECT create_hypertable('readings', 'ts', migrate_data => true)", logger: logger)
                return true
            }
            setNote("TimescaleDB: readings is a hypertable\(converted ? " (converted now)" : "")")
        } catch {
            setNote("TimescaleDB is available but could not be used (\(error)): readings is a plain table")
        }
    }

    private func setNote(_ note: String) {
        logger.debug("\(note)")
        notesBox.withLock { $0 = [note] }
    }
}
