import Foundation
import GRDB

// The SQLite store's records beside the readings: supplies, checkpoints, dead letters, leases,
// instances, API keys and the audit log.
extension SQLiteStore {
    // MARK: Supplies

    public func saveSupply(_ s: SupplyPoint) async throws {
        let powers = JSONValue.array(s.contractedPowerKW.map(JSONValue.number)).jsonText()
        let now = Self.millis(Date())
        try await writer.write { db in
            try db.execute(
                sql: """
                    INSERT INTO supplies (tenant, cups, valid_from, valid_to, tariff, zone, distributor_code, point_type,
                                          contracted_power_kw, coefficient, community, raw, pv, market, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (tenant, cups, valid_from) DO UPDATE SET
                        valid_to = excluded.valid_to, tariff = excluded.tariff, zone = excluded.zone,
                        distributor_code = excluded.distributor_code, point_type = excluded.point_type,
                        contracted_power_kw = excluded.contracted_power_kw, coefficient = excluded.coefficient,
                        community = excluded.community, raw = excluded.raw, pv = excluded.pv, market = excluded.market,
                        updated_at = excluded.updated_at
                    """,
                arguments: [
                    s.tenant, s.cups, s.validFrom ?? "", s.validTo, s.tariff, s.zone, s.distributorCode, s.pointType,
                    powers, s.coefficient, s.community, s.raw?.jsonText(), s.pv?.json.jsonText(), s.market?.json.jsonText(), now,
                ])
        }
    }

    public func supplyTenants() async throws -> [String] {
        try await writer.read { db in try String.fetchAll(db, sql: "SELECT DISTINCT tenant FROM supplies ORDER BY tenant") }
    }

    public func supplies(tenant: String) async throws -> [SupplyPoint] {
        try await writer.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM supplies WHERE tenant = ? ORDER BY cups, valid_from", arguments: [tenant]).map { row in
                let validFrom: String = row["valid_from"]
                let powersText: String = row["contracted_power_kw"]
                let rawText: String? = row["raw"]
                let pvText: String? = row["pv"]
                let marketText: String? = row["market"]
                return SupplyPoint(
                    tenant: row["tenant"], cups: row["cups"], tariff: row["tariff"], zone: row["zone"],
                    distributorCode: row["distributor_code"], pointType: row["point_type"],
                    contractedPowerKW: ((try? JSONValue.parse(powersText))?.arrayValue ?? []).compactMap(\.doubleValue),
                    coefficient: row["coefficient"], community: row["community"],
                    validFrom: validFrom.isEmpty ? nil : validFrom, validTo: row["valid_to"],
                    raw: rawText.flatMap { try? JSONValue.parse($0) },
                    pv: pvText.flatMap { try? JSONValue.parse($0) }.flatMap { try? PVSystem(json: $0) },
                    market: marketText.flatMap { try? JSONValue.parse($0) }.flatMap { try? MarketOrder(json: $0) })
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
}
