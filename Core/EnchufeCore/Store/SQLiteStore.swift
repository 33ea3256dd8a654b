import Foundation
import GRDB
import GRDBSQLite
import Synchronization

/// SQLite copies a bound text before the call returns.
private let sqliteTransient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

/// The embedded default store: one SQLite file in WAL mode, through GRDB.
/// Commits are synced to disk before they return (`synchronous = FULL`); sources are acknowledged
/// only after the commit.
public final class SQLiteStore: Store {
    let writer: any DatabaseWriter
    public let displayName: String
    private let path: String
    /// The lock file held while an instance runs on this store (`claimForOneInstance`).
    private let lock = Mutex<Int32?>(nil)

    /// `sqlite:PATH`, `sqlite:///ABSOLUTE/PATH` or `sqlite::memory:`.
    public convenience init(url: String) throws {
        guard url.hasPrefix("sqlite:") else { throw StoreError.unsupportedURL(url, schemes: ["sqlite"]) }
        var path = String(url.dropFirst("sqlite:".count))
        if path.hasPrefix("//") { path = String(path.dropFirst(2)) }
        try self.init(path: path)
    }

    public init(path: String) throws {
        self.path = path
        var config = Configuration()
        config.busyMode = .timeout(10)
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        if path == ":memory:" || path.isEmpty {
            writer = try DatabaseQueue(configuration: config)
            displayName = "sqlite::memory:"
        } else {
            let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
            do {
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
                writer = try DatabasePool(path: path, configuration: config)
            } catch {
                throw StoreError.cannotOpen("sqlite:\(path)", reason: "\(error)")
            }
            displayName = "sqlite:\(path)"
        }
    }

    // MARK: Schema

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
        return migrator
    }

    @discardableResult
    public func migrate() async throws -> [String] {
        let migrator = Self.migrator
        let before = try await writer.read { try migrator.appliedIdentifiers($0) }
        try migrator.migrate(writer)
        return migrator.migrations.filter { !before.contains($0) }
    }

    /// Makes this process the one instance running on the file: a second `enchufe run` on it is
    /// refused, saying which instance has it (several instances need PostgreSQL). The claim lasts
    /// as long as the process (an exclusive lock on `PATH.lock`, released by the system when the
    /// process ends, however it ends).
    public func claimForOneInstance(_ instance: String) throws {
        guard path != ":memory:", !path.isEmpty else { return }
        let lockPath = path + ".lock"
        let fd = open(lockPath, O_RDWR | O_CREAT, 0o644)
        guard fd >= 0 else { throw StoreError.cannotOpen(displayName, reason: "cannot open \(lockPath): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            var buffer = [UInt8](repeating: 0, count: 256)
            let n = read(fd, &buffer, buffer.count)
            Glibc.close(fd)
            let holder = n > 0 ? String(decoding: buffer[..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : "another process"
            throw StoreError.cannotOpen(
                displayName,
                reason: "it is in use by another enchufe run (instance \(holder)): a SQLite store serves one instance; to run several, use PostgreSQL (--store postgres://...)")
        }
        ftruncate(fd, 0)
        let text = Array((instance + "\n").utf8)
        _ = text.withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count) }
        lock.withLock { $0 = fd }
    }

    public func ping() async throws {
        _ = try await writer.read { try Int.fetchOne($0, sql: "SELECT 1") }
    }

    public func close() async throws {
        try writer.close()
    }

    // MARK: Readings

    /// A new reading is a plain insert; only a reading whose key is stored already takes the
    /// update, which changes the row when the value, unit, resolution or quality differ and the
    /// quality is not lower. Both number their parameters alike (`bind`).
    private static let insertSQL = """
        INSERT INTO readings (tenant, series, quantity, ts, resolution, value, unit, quality, source, revision, seq, updated_at)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1, ?10, ?11)
        ON CONFLICT (tenant, series, quantity, ts) DO NOTHING
        """

    private static let updateSQL = """
        UPDATE readings SET
            resolution = ?5, value = ?6, unit = ?7, quality = ?8, source = ?9, revision = revision + 1,
            seq = ?10, updated_at = ?11
        WHERE tenant = ?1 AND series = ?2 AND quantity = ?3 AND ts = ?4
          AND \(qualityRank("?8")) >= \(qualityRank("quality"))
          AND (?6 IS NOT value OR ?8 IS NOT quality OR ?7 IS NOT unit OR ?5 IS NOT resolution)
        """

    /// Runs the insert or the update for one reading, bound with SQLite's own calls (GRDB's
    /// `StatementArguments` box every value, which cost as much as the insert itself in a batch
    /// of thousands); whether it changed a row.
    private static func run(_ statement: Statement, _ r: Reading, seq: Int64, now: Int64, _ db: Database) throws -> Bool {
        let s = statement.sqliteStatement
        sqlite3_reset(s)
        func text(_ index: Int32, _ value: String) { sqlite3_bind_text(s, index, value, -1, sqliteTransient) }
        text(1, r.tenant)
        text(2, r.series)
        text(3, r.quantity)
        text(5, r.resolution)
        text(7, r.unit)
        text(8, r.quality.rawValue)
        text(9, r.source)
        sqlite3_bind_int64(s, 4, millis(r.ts))
        sqlite3_bind_double(s, 6, r.value)
        sqlite3_bind_int64(s, 10, seq)
        sqlite3_bind_int64(s, 11, now)
        let code = sqlite3_step(s)
        guard code == SQLITE_DONE else {
            let message = String(cString: sqlite3_errmsg(db.sqliteConnection))
            sqlite3_reset(s)
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: message, sql: statement.sql)
        }
        return sqlite3_changes(db.sqliteConnection) > 0
    }

    private static func qualityRank(_ column: String) -> String {
        let cases = Quality.allCases.map { "WHEN '\($0.rawValue)' THEN \($0.rank)" }.joined(separator: " ")
        return "(CASE \(column) \(cases) ELSE 0 END)"
    }

    public func upsert(_ readings: [Reading]) async throws -> UpsertSummary {
        guard !readings.isEmpty else { return UpsertSummary() }
        try readings.checkStorable()
        let now = Self.millis(Date())
        let lease = Lease.current
        return try await writer.write { db in
            if let lease { try Self.checkHeld(lease, now: now, db) }
            var seq = try Int64.fetchOne(db, sql: "SELECT value FROM sequences WHERE name = 'readings'") ?? 0
            let insert = try db.cachedStatement(sql: Self.insertSQL)
            let update = try db.cachedStatement(sql: Self.updateSQL)
            var summary = UpsertSummary()
            for r in readings {
                seq += 1
                if try Self.run(insert, r, seq: seq, now: now, db) {
                    summary.inserted += 1
                } else if try Self.run(update, r, seq: seq, now: now, db) {
                    summary.updated += 1
                } else {
                    summary.unchanged += 1
                }
            }
            try db.execute(sql: "UPDATE sequences SET value = ? WHERE name = 'readings'", arguments: [seq])
            return summary
        }
    }

    private static let readingColumns = "tenant, series, quantity, ts, resolution, value, unit, quality, source, revision, seq"

    private static func storedReading(_ row: Row) -> StoredReading {
        StoredReading(
            reading: Reading(
                tenant: row["tenant"], series: row["series"], quantity: row["quantity"],
                ts: date(row["ts"]), resolution: row["resolution"], value: row["value"], unit: row["unit"],
                quality: Quality(rawValue: row["quality"]) ?? .measured, source: row["source"]),
            revision: row["revision"], seq: row["seq"])
    }

    public func readings(_ query: ReadingQuery) async throws -> [StoredReading] {
        var sql = "SELECT \(Self.readingColumns) FROM readings WHERE tenant = ?"
        var arguments: StatementArguments = [query.tenant]
        if !query.series.isEmpty {
            sql += " AND series IN (\(query.series.map { _ in "?" }.joined(separator: ",")))"
            for s in query.series { _ = arguments.append(contentsOf: [s]) }
        }
        if let quantity = query.quantity {
            sql += " AND quantity = ?"
            _ = arguments.append(contentsOf: [quantity])
        }
        if let from = query.from {
            sql += " AND ts >= ?"
            _ = arguments.append(contentsOf: [Self.millis(from)])
        }
        if let to = query.to {
            sql += " AND ts < ?"
            _ = arguments.append(contentsOf: [Self.millis(to)])
        }
        if let after = query.after {
            sql += " AND (series, quantity, ts) > (?, ?, ?)"
            _ = arguments.append(contentsOf: [after.series, after.quantity, Self.millis(after.ts)])
        }
        sql += " ORDER BY series, quantity, ts"
        if let limit = query.limit { sql += " LIMIT \(limit)" }
        let finalSQL = sql
        let finalArguments = arguments
        return try await writer.read { db in
            try Row.fetchAll(db, sql: finalSQL, arguments: finalArguments).map(Self.storedReading)
        }
    }

    public func changes(tenant: String, after seq: Int64, limit: Int) async throws -> [StoredReading] {
        try await writer.read { db in
            try Row.fetchAll(
                db, sql: "SELECT \(Self.readingColumns) FROM readings WHERE tenant = ? AND seq > ? ORDER BY seq LIMIT ?",
                arguments: [tenant, seq, limit]
            ).map(Self.storedReading)
        }
    }

    // MARK: Supplies

    public func saveSupply(_ s: SupplyPoint) async throws {
        let powers = JSONValue.array(s.contractedPowerKW.map(JSONValue.number)).jsonText()
        let now = Self.millis(Date())
        try await writer.write { db in
            try db.execute(
                sql: """
                    INSERT INTO supplies (tenant, cups, valid_from, valid_to, tariff, zone, distributor_code, point_type,
                                          contracted_power_kw, coefficient, community, raw, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (tenant, cups, valid_from) DO UPDATE SET
                        valid_to = excluded.valid_to, tariff = excluded.tariff, zone = excluded.zone,
                        distributor_code = excluded.distributor_code, point_type = excluded.point_type,
                        contracted_power_kw = excluded.contracted_power_kw, coefficient = excluded.coefficient,
                        community = excluded.community, raw = excluded.raw, updated_at = excluded.updated_at
                    """,
                arguments: [
                    s.tenant, s.cups, s.validFrom ?? "", s.validTo, s.tariff, s.zone, s.distributorCode, s.pointType,
                    powers, s.coefficient, s.community, s.raw?.jsonText(), now,
                ])
        }
    }

    public func supplies(tenant: String) async throws -> [SupplyPoint] {
        try await writer.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM supplies WHERE tenant = ? ORDER BY cups, valid_from", arguments: [tenant]).map { row in
                let validFrom: String = row["valid_from"]
                let powersText: String = row["contracted_power_kw"]
                let rawText: String? = row["raw"]
                return SupplyPoint(
                    tenant: row["tenant"], cups: row["cups"], tariff: row["tariff"], zone: row["zone"],
                    distributorCode: row["distributor_code"], pointType: row["point_type"],
                    contractedPowerKW: ((try? JSONValue.parse(powersText))?.arrayValue ?? []).compactMap(\.doubleValue),
                    coefficient: row["coefficient"], community: row["community"],
                    validFrom: validFrom.isEmpty ? nil : validFrom, validTo: row["valid_to"],
                    raw: rawText.flatMap { try? JSONValue.parse($0) })
            }
        }
    }

    // MARK: Checkpoints

    public func checkpoint(_ key: CheckpointKey) async throws -> Checkpoint? {
        try await writer.read { db in
            try Row.fetchOne(
                db, sql: "SELECT value, updated_at FROM checkpoints WHERE tenant = ? AND flow = ? AND node = ? AND key = ?",
                arguments: [key.tenant, key.flow, key.node, key.key]
            ).map { Checkpoint(key: key, value: $0["value"], updatedAt: Self.date($0["updated_at"])) }
        }
    }

    public func saveCheckpoint(_ key: CheckpointKey, value: String) async throws {
        let now = Self.millis(Date())
        let lease = Lease.current
        try await writer.write { db in
            if let lease { try Self.checkHeld(lease, now: now, db) }
            try db.execute(
                sql: """
                    INSERT INTO checkpoints (tenant, flow, node, key, value, updated_at) VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT (tenant, flow, node, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
                    """,
                arguments: [key.tenant, key.flow, key.node, key.key, value, now])
        }
    }

    // MARK: Dead letters

    public func addDeadLetter(_ d: NewDeadLetter) async throws -> Int64 {
        let now = Self.millis(Date())
        return try await writer.write { db in
            try db.execute(
                sql: "INSERT INTO dead_letters (tenant, flow, node, error, message, attempts, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                arguments: [d.tenant, d.flow, d.node, d.error, d.message.jsonText(), d.attempts, now])
            return db.lastInsertedRowID
        }
    }

    private static func deadLetter(_ row: Row) -> DeadLetter {
        let message: String = row["message"]
        let replayed: Int64? = row["replayed_at"]
        return DeadLetter(
            id: row["id"], tenant: row["tenant"], flow: row["flow"], node: row["node"], error: row["error"],
            message: (try? JSONValue.parse(message)) ?? .string(message), attempts: row["attempts"],
            createdAt: date(row["created_at"]), replayedAt: replayed.map(date))
    }

    public func deadLetters(tenant: String?, limit: Int) async throws -> [DeadLetter] {
        try await writer.read { db in
            if let tenant {
                return try Row.fetchAll(db, sql: "SELECT * FROM dead_letters WHERE tenant = ? ORDER BY id DESC LIMIT ?", arguments: [tenant, limit]).map(Self.deadLetter)
            }
            return try Row.fetchAll(db, sql: "SELECT * FROM dead_letters ORDER BY id DESC LIMIT ?", arguments: [limit]).map(Self.deadLetter)
        }
    }

    public func deadLetter(id: Int64) async throws -> DeadLetter? {
        try await writer.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM dead_letters WHERE id = ?", arguments: [id]).map(Self.deadLetter)
        }
    }

    public func markDeadLetterReplayed(id: Int64, at: Date) async throws {
        try await writer.write { db in
            try db.execute(sql: "UPDATE dead_letters SET replayed_at = ? WHERE id = ?", arguments: [Self.millis(at), id])
        }
    }

    public func purgeDeadLetters(tenant: String?) async throws -> Int {
        try await writer.write { db in
            if let tenant {
                try db.execute(sql: "DELETE FROM dead_letters WHERE tenant = ?", arguments: [tenant])
            } else {
                try db.execute(sql: "DELETE FROM dead_letters")
            }
            return db.changesCount
        }
    }

    // MARK: API keys and audit

    /// Throws `LeaseLost` unless `lease` is held with its fence (in the caller's transaction).
    static func checkHeld(_ lease: Lease, now: Int64, _ db: Database) throws {
        let held = try Bool.fetchOne(
            db, sql: "SELECT EXISTS (SELECT 1 FROM leases WHERE name = ? AND holder = ? AND fence = ? AND expires_at > ?)",
            arguments: [lease.name, lease.holder, lease.fence, now]) ?? false
        guard held else { throw LeaseLost(lease: lease.name) }
    }

    public func acquireLease(_ name: String, holder: String, ttl: Duration) async throws -> Lease? {
        let now = Self.millis(Date())
        let expires = now + Int64(ttl.seconds * 1000)
        return try await writer.write { db in
            try Row.fetchOne(
                db,
                sql: """
                    INSERT INTO leases (name, holder, fence, expires_at) VALUES (?, ?, 1, ?)
                    ON CONFLICT (name) DO UPDATE SET
                        fence = CASE WHEN leases.holder = excluded.holder AND leases.expires_at > ? THEN leases.fence ELSE leases.fence + 1 END,
                        holder = excluded.holder, expires_at = excluded.expires_at
                    WHERE leases.holder = excluded.holder OR leases.expires_at <= ?
                    RETURNING fence, expires_at
                    """,
                arguments: [name, holder, expires, now, now]
            ).map { Lease(name: name, holder: holder, fence: $0["fence"], expiresAt: Self.date($0["expires_at"])) }
        }
    }

    public func renewLease(_ lease: Lease, ttl: Duration) async throws -> Bool {
        let expires = Self.millis(Date()) + Int64(ttl.seconds * 1000)
        return try await writer.write { db in
            try db.execute(
                sql: "UPDATE leases SET expires_at = ? WHERE name = ? AND holder = ? AND fence = ?",
                arguments: [expires, lease.name, lease.holder, lease.fence])
            return db.changesCount == 1
        }
    }

    public func releaseLease(_ lease: Lease) async throws {
        try await writer.write { db in
            try db.execute(
                sql: "UPDATE leases SET expires_at = 0 WHERE name = ? AND holder = ? AND fence = ?", arguments: [lease.name, lease.holder, lease.fence])
        }
    }

    public func leases() async throws -> [Lease] {
        try await writer.read { db in
            try Row.fetchAll(db, sql: "SELECT name, holder, fence, expires_at FROM leases ORDER BY name").map {
                Lease(name: $0["name"], holder: $0["holder"], fence: $0["fence"], expiresAt: Self.date($0["expires_at"]))
            }
        }
    }

    public func saveInstance(_ i: InstanceRecord) async throws {
        try await writer.write { db in
            try db.execute(
                sql: """
                    INSERT INTO instances (id, host, pid, http, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid, http = excluded.http,
                        started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at
                    """,
                arguments: [i.id, i.host, i.pid, i.http, Self.millis(i.startedAt), Self.millis(i.heartbeatAt)])
        }
    }

    public func instances() async throws -> [InstanceRecord] {
        try await writer.read { db in
            try Row.fetchAll(db, sql: "SELECT id, host, pid, http, started_at, heartbeat_at FROM instances ORDER BY id").map { row in
                InstanceRecord(
                    id: row["id"], host: row["host"], pid: row["pid"], http: row["http"],
                    startedAt: Self.date(row["started_at"]), heartbeatAt: Self.date(row["heartbeat_at"]))
            }
        }
    }

    public func removeInstance(id: String) async throws {
        try await writer.write { db in try db.execute(sql: "DELETE FROM instances WHERE id = ?", arguments: [id]) }
    }

    public func saveAPIKey(_ k: APIKeyRecord) async throws {
        try await writer.write { db in
            try db.execute(
                sql: """
                    INSERT INTO api_keys (id, tenant, name, scopes, hash, created_at, revoked_at, last_used_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (id) DO UPDATE SET name = excluded.name, scopes = excluded.scopes,
                        revoked_at = excluded.revoked_at, last_used_at = excluded.last_used_at
                    """,
                arguments: [
                    k.id, k.tenant, k.name, k.scopes.joined(separator: " "), k.hash, Self.millis(k.createdAt),
                    k.revokedAt.map(Self.millis), k.lastUsedAt.map(Self.millis),
                ])
        }
    }

    private static func apiKey(_ row: Row) -> APIKeyRecord {
        let scopes: String = row["scopes"]
        let revoked: Int64? = row["revoked_at"]
        let used: Int64? = row["last_used_at"]
        return APIKeyRecord(
            id: row["id"], tenant: row["tenant"], name: row["name"], scopes: scopes.split(separator: " ").map(String.init),
            hash: row["hash"], createdAt: date(row["created_at"]), revokedAt: revoked.map(date), lastUsedAt: used.map(date))
    }

    public func apiKeys(tenant: String?) async throws -> [APIKeyRecord] {
        try await writer.read { db in
            if let tenant {
                return try Row.fetchAll(db, sql: "SELECT * FROM api_keys WHERE tenant = ? ORDER BY created_at, id", arguments: [tenant]).map(Self.apiKey)
            }
            return try Row.fetchAll(db, sql: "SELECT * FROM api_keys ORDER BY tenant, created_at, id").map(Self.apiKey)
        }
    }

    public func apiKey(hash: String) async throws -> APIKeyRecord? {
        try await writer.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM api_keys WHERE hash = ?", arguments: [hash]).map(Self.apiKey)
        }
    }

    public func revokeAPIKey(id: String, at: Date) async throws -> Bool {
        try await writer.write { db in
            try db.execute(sql: "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", arguments: [Self.millis(at), id])
            if db.changesCount > 0 { return true }
            return try Bool.fetchOne(db, sql: "SELECT 1 FROM api_keys WHERE id = ?", arguments: [id]) ?? false
        }
    }

    public func appendAudit(tenant: String, actor: String, action: String, detail: JSONValue, at: Date) async throws {
        try await writer.write { db in
            try db.execute(
                sql: "INSERT INTO audit_log (at, tenant, actor, action, detail) VALUES (?, ?, ?, ?, ?)",
                arguments: [Self.millis(at), tenant, actor, action, detail.jsonText()])
        }
    }

    public func auditLog(tenant: String?, limit: Int) async throws -> [AuditEntry] {
        try await writer.read { db in
            let rows: [Row]
            if let tenant {
                rows = try Row.fetchAll(db, sql: "SELECT * FROM audit_log WHERE tenant = ? ORDER BY id DESC LIMIT ?", arguments: [tenant, limit])
            } else {
                rows = try Row.fetchAll(db, sql: "SELECT * FROM audit_log ORDER BY id DESC LIMIT ?", arguments: [limit])
            }
            return rows.map { row in
                let detail: String = row["detail"]
                return AuditEntry(
                    id: row["id"], at: Self.date(row["at"]), tenant: row["tenant"], actor: row["actor"], action: row["action"],
                    detail: (try? JSONValue.parse(detail)) ?? .string(detail))
            }
        }
    }

    // MARK: Time

    static func millis(_ date: Date) -> Int64 { date.epochMilliseconds }
    static func date(_ millis: Int64) -> Date { Date(timeIntervalSince1970: Double(millis) / 1000) }
}
