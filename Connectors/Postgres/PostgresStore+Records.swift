import EnchufeCore
import Foundation
import PostgresNIO

extension PostgresStore {
    // MARK: Supplies

    public func saveSupply(_ s: SupplyPoint) async throws {
        let raw = s.raw?.jsonText()
        let pv = s.pv?.json.jsonText()
        let market = s.market?.json.jsonText()
        try await withConnection { connection in
            try await connection.query(
                """
                INSERT INTO supplies (tenant, cups, valid_from, valid_to, tariff, zone, distributor_code, point_type,
                                      contracted_power_kw, coefficient, community, raw, pv, market, updated_at)
                VALUES (\(s.tenant), \(s.cups), \(s.validFrom ?? ""), \(s.validTo), \(s.tariff), \(s.zone), \(s.distributorCode),
                        \(s.pointType), \(s.contractedPowerKW), \(s.coefficient), \(s.community), \(raw)::jsonb, \(pv)::jsonb,
                        \(market)::jsonb, now())
                ON CONFLICT (tenant, cups, valid_from) DO UPDATE SET
                    valid_to = excluded.valid_to, tariff = excluded.tariff, zone = excluded.zone,
                    distributor_code = excluded.distributor_code, point_type = excluded.point_type,
                    contracted_power_kw = excluded.contracted_power_kw, coefficient = excluded.coefficient,
                    community = excluded.community, raw = excluded.raw, pv = excluded.pv, market = excluded.market,
                    updated_at = excluded.updated_at
                """, logger: self.logger)
        }
    }

    public func supplyTenants() async throws -> [String] {
        try await withConnection { connection in
            var tenants: [String] = []
            for try await tenant in try await connection.query("SELECT DISTINCT tenant FROM supplies ORDER BY tenant", logger: self.logger).decode(String.self) {
                tenants.append(tenant)
            }
            return tenants
        }
    }

    public func supplies(tenant: String) async throws -> [SupplyPoint] {
        try await withConnection { connection in
            let rows = try await connection.query(
                """
                SELECT tenant, cups, valid_from, valid_to, tariff, zone, distributor_code, point_type, contracted_power_kw,
                       coefficient, community, raw::text, pv::text, market::text
                FROM supplies WHERE tenant = \(tenant) ORDER BY cups, valid_from
                """, logger: self.logger)
            var result: [SupplyPoint] = []
            for try await (tenant, cups, validFrom, validTo, tariff, zone, distributor, pointType, powers, coefficient, community, raw, pv, market) in rows.decode(
                (String, String, String, String?, String?, String?, String?, Int?, [Double], Double?, String?, String?, String?, String?).self)
            {
                result.append(SupplyPoint(
                    tenant: tenant, cups: cups, tariff: tariff, zone: zone, distributorCode: distributor, pointType: pointType,
                    contractedPowerKW: powers, coefficient: coefficient, community: community,
                    validFrom: validFrom.isEmpty ? nil : validFrom, validTo: validTo, raw: raw.flatMap { try? JSONValue.parse($0) },
                    pv: pv.flatMap { try? JSONValue.parse($0) }.flatMap { try? PVSystem(json: $0) },
                    market: market.flatMap { try? JSONValue.parse($0) }.flatMap { try? MarketOrder(json: $0) }))
            }
            return result
        }
    }

    // MARK: Checkpoints

    public func checkpoint(_ key: CheckpointKey) async throws -> Checkpoint? {
        try await withConnection { connection in
            let rows = try await connection.query(
                "SELECT value, updated_at FROM checkpoints WHERE tenant = \(key.tenant) AND flow = \(key.flow) AND node = \(key.node) AND key = \(key.key)",
                logger: self.logger)
            for try await (value, updated) in rows.decode((String, Date).self) {
                return Checkpoint(key: key, value: value, updatedAt: Self.roundedToMillis(updated))
            }
            return nil
        }
    }

    public func saveCheckpoint(_ key: CheckpointKey, value: String) async throws {
        let lease = Lease.current
        try await withConnection { connection in
            guard let lease else {
                try await connection.query(
                    """
                    INSERT INTO checkpoints (tenant, flow, node, key, value, updated_at) VALUES (\(key.tenant), \(key.flow), \(key.node), \(key.key), \(value), now())
                    ON CONFLICT (tenant, flow, node, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
                    """, logger: self.logger)
                return
            }
            // Fenced: written only while the lease is held with this fence (one statement, so no
            // other instance can take the lease between the check and the write).
            let rows = try await connection.query(
                """
                INSERT INTO checkpoints (tenant, flow, node, key, value, updated_at)
                SELECT \(key.tenant), \(key.flow), \(key.node), \(key.key), \(value), now()
                WHERE EXISTS (SELECT 1 FROM leases WHERE name = \(lease.name) AND holder = \(lease.holder) AND fence = \(lease.fence) AND expires_at > now() FOR SHARE)
                ON CONFLICT (tenant, flow, node, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
                RETURNING 1
                """, logger: self.logger)
            var written = false
            for try await _ in rows { written = true }
            guard written else { throw LeaseLost(lease: lease.name) }
        }
    }

    // MARK: Named values

    public func value(_ key: NamedKey, now: Date) async throws -> String? {
        try await withConnection { connection in
            let rows = try await connection.query(
                """
                SELECT value FROM named_values
                WHERE tenant = \(key.tenant) AND namespace = \(key.namespace) AND name = \(key.name)
                AND (expires_at IS NULL OR expires_at > \(now))
                """, logger: self.logger)
            for try await value in rows.decode(String.self) { return value }
            return nil
        }
    }

    public func setValue(_ key: NamedKey, _ value: String, expiresAt: Date?) async throws {
        let lease = Lease.current
        try await withConnection { connection in
            guard let lease else {
                try await connection.query(
                    """
                    INSERT INTO named_values (tenant, namespace, name, value, expires_at)
                    VALUES (\(key.tenant), \(key.namespace), \(key.name), \(value), \(expiresAt))
                    ON CONFLICT (tenant, namespace, name) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at
                    """, logger: self.logger)
                return
            }
            // Fenced, as `saveCheckpoint`: one statement checks the lease and writes.
            let rows = try await connection.query(
                """
                INSERT INTO named_values (tenant, namespace, name, value, expires_at)
                SELECT \(key.tenant), \(key.namespace), \(key.name), \(value), \(expiresAt)
                WHERE EXISTS (SELECT 1 FROM leases WHERE name = \(lease.name) AND holder = \(lease.holder) AND fence = \(lease.fence) AND expires_at > now() FOR SHARE)
                ON CONFLICT (tenant, namespace, name) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at
                RETURNING 1
                """, logger: self.logger)
            var written = false
            for try await _ in rows { written = true }
            guard written else { throw LeaseLost(lease: lease.name) }
        }
    }

    public func claim(_ key: NamedKey, value: String, expiresAt: Date?) async throws -> Bool {
        try await withConnection { connection in
            let rows = try await connection.query(
                """
                INSERT INTO named_values (tenant, namespace, name, value, expires_at)
                VALUES (\(key.tenant), \(key.namespace), \(key.name), \(value), \(expiresAt))
                ON CONFLICT (tenant, namespace, name) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at
                WHERE named_values.expires_at <= now()
                RETURNING 1
                """, logger: self.logger)
            var claimed = false
            for try await _ in rows { claimed = true }
            return claimed
        }
    }

    public func removeValue(_ key: NamedKey) async throws {
        try await withConnection { connection in
            try await connection.query(
                "DELETE FROM named_values WHERE tenant = \(key.tenant) AND namespace = \(key.namespace) AND name = \(key.name)",
                logger: self.logger)
        }
    }

    public func purgeExpiredValues(now: Date) async throws -> Int {
        try await withConnection { connection in
            let rows = try await connection.query("DELETE FROM named_values WHERE expires_at <= \(now) RETURNING 1", logger: self.logger)
            var n = 0
            for try await _ in rows { n += 1 }
            return n
        }
    }

    // MARK: Leases

    /// Throws `LeaseLost` unless `lease` is held with its fence; in a transaction, the lease row
    /// stays locked (`FOR SHARE`) until it commits, so no instance takes the lease in between.
    static func checkHeld(_ lease: Lease, _ connection: PostgresConnection, logger: Logger) async throws {
        let rows = try await connection.query(
            """
            SELECT 1 FROM leases WHERE name = \(lease.name) AND holder = \(lease.holder) AND fence = \(lease.fence) AND expires_at > now() FOR SHARE
            """, logger: logger)
        var held = false
        for try await _ in rows { held = true }
        guard held else { throw LeaseLost(lease: lease.name) }
    }

    public func acquireLease(_ name: String, holder: String, ttl: Duration) async throws -> Lease? {
        let seconds = ttl.seconds
        return try await withConnection { connection in
            let rows = try await connection.query(
                """
                INSERT INTO leases (name, holder, fence, expires_at) VALUES (\(name), \(holder), 1, now() + make_interval(secs => \(seconds)))
                ON CONFLICT (name) DO UPDATE SET
                    fence = CASE WHEN leases.holder = excluded.holder AND leases.expires_at > now() THEN leases.fence ELSE leases.fence + 1 END,
                    holder = excluded.holder, expires_at = excluded.expires_at
                WHERE leases.holder = excluded.holder OR leases.expires_at <= now()
                RETURNING fence, expires_at
                """, logger: self.logger)
            for try await (fence, expires) in rows.decode((Int64, Date).self) {
                return Lease(name: name, holder: holder, fence: fence, expiresAt: Self.roundedToMillis(expires))
            }
            return nil
        }
    }

    public func renewLease(_ lease: Lease, ttl: Duration) async throws -> Bool {
        let seconds = ttl.seconds
        return try await withConnection { connection in
            let rows = try await connection.query(
                """
                UPDATE leases SET expires_at = now() + make_interval(secs => \(seconds))
                WHERE name = \(lease.name) AND holder = \(lease.holder) AND fence = \(lease.fence) RETURNING 1
                """, logger: self.logger)
            var renewed = false
            for try await _ in rows { renewed = true }
            return renewed
        }
    }

    public func releaseLease(_ lease: Lease) async throws {
        try await withConnection { connection in
            try await connection.query(
                "UPDATE leases SET expires_at = now() - interval '1 second' WHERE name = \(lease.name) AND holder = \(lease.holder) AND fence = \(lease.fence)",
                logger: self.logger)
        }
    }

    public func leases() async throws -> [Lease] {
        try await withConnection { connection in
            var result: [Lease] = []
            for try await (name, holder, fence, expires) in try await connection.query(
                "SELECT name, holder, fence, expires_at FROM leases ORDER BY name", logger: self.logger
            ).decode((String, String, Int64, Date).self) {
                result.append(Lease(name: name, holder: holder, fence: fence, expiresAt: Self.roundedToMillis(expires)))
            }
            return result
        }
    }

    // MARK: Dead letters

    public func addDeadLetter(_ d: NewDeadLetter) async throws -> Int64 {
        try await withConnection { connection in
            let rows = try await connection.query(
                """
                INSERT INTO dead_letters (tenant, flow, node, error, message, attempts, created_at)
                VALUES (\(d.tenant), \(d.flow), \(d.node), \(d.error), \(d.message.jsonText())::jsonb, \(d.attempts), now()) RETURNING id
                """, logger: self.logger)
            for try await id in rows.decode(Int64.self) { return id }
            throw PostgresServerError(sqlState: "", message: "INSERT ... RETURNING id returned no row")
        }
    }

    static let deadLetterColumns = "id, tenant, flow, node, error, message::text, attempts, created_at, replayed_at"

    static func deadLetters(_ rows: PostgresRowSequence) async throws -> [DeadLetter] {
        var result: [DeadLetter] = []
        for try await (id, tenant, flow, node, error, message, attempts, created, replayed) in rows.decode(
            (Int64, String, String, String, String, String, Int, Date, Date?).self)
        {
            result.append(DeadLetter(
                id: id, tenant: tenant, flow: flow, node: node, error: error,
                message: (try? JSONValue.parse(message)) ?? .string(message), attempts: attempts,
                createdAt: roundedToMillis(created), replayedAt: replayed.map(roundedToMillis)))
        }
        return result
    }

    public func deadLetters(tenant: String?, limit: Int) async throws -> [DeadLetter] {
        try await withConnection { connection in
            if let tenant {
                return try await Self.deadLetters(connection.query(
                    "SELECT \(unescaped: Self.deadLetterColumns) FROM dead_letters WHERE tenant = \(tenant) ORDER BY id DESC LIMIT \(limit)",
                    logger: self.logger))
            }
            return try await Self.deadLetters(connection.query(
                "SELECT \(unescaped: Self.deadLetterColumns) FROM dead_letters ORDER BY id DESC LIMIT \(limit)", logger: self.logger))
        }
    }

    public func deadLetter(id: Int64) async throws -> DeadLetter? {
        try await withConnection { connection in
            try await Self.deadLetters(connection.query(
                "SELECT \(unescaped: Self.deadLetterColumns) FROM dead_letters WHERE id = \(id)", logger: self.logger)).first
        }
    }

    public func markDeadLetterReplayed(id: Int64, at: Date) async throws {
        try await withConnection { connection in
            try await connection.query("UPDATE dead_letters SET replayed_at = \(at) WHERE id = \(id)", logger: self.logger)
        }
    }

    public func purgeDeadLetters(tenant: String?) async throws -> Int {
        try await withConnection { connection in
            let rows: PostgresRowSequence
            if let tenant {
                rows = try await connection.query("WITH d AS (DELETE FROM dead_letters WHERE tenant = \(tenant) RETURNING 1) SELECT count(*) FROM d", logger: self.logger)
            } else {
                rows = try await connection.query("WITH d AS (DELETE FROM dead_letters RETURNING 1) SELECT count(*) FROM d", logger: self.logger)
            }
            for try await count in rows.decode(Int64.self) { return Int(count) }
            return 0
        }
    }

    // MARK: API keys and audit

    public func saveInstance(_ i: InstanceRecord) async throws {
        try await withConnection { connection in
            try await connection.query(
                """
                INSERT INTO instances (id, host, pid, http, started_at, heartbeat_at)
                VALUES (\(i.id), \(i.host), \(i.pid), \(i.http), \(i.startedAt), \(i.heartbeatAt))
                ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid, http = excluded.http,
                    started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at
                """, logger: self.logger)
        }
    }

    public func instances() async throws -> [InstanceRecord] {
        try await withConnection { connection in
            var result: [InstanceRecord] = []
            let rows = try await connection.query("SELECT id, host, pid, http, started_at, heartbeat_at FROM instances ORDER BY id", logger: self.logger)
            for try await (id, host, pid, http, started, beat) in rows.decode((String, String, Int, String, Date, Date).self) {
                result.append(InstanceRecord(id: id, host: host, pid: pid, http: http, startedAt: Self.roundedToMillis(started), heartbeatAt: Self.roundedToMillis(beat)))
            }
            return result
        }
    }

    public func removeInstance(id: String) async throws {
        try await withConnection { connection in
            try await connection.query("DELETE FROM instances WHERE id = \(id)", logger: self.logger)
        }
    }

    public func saveAPIKey(_ k: APIKeyRecord) async throws {
        try await withConnection { connection in
            try await connection.query(
                """
                INSERT INTO api_keys (id, tenant, name, scopes, hash, created_at, revoked_at, last_used_at)
                VALUES (\(k.id), \(k.tenant), \(k.name), \(k.scopes.joined(separator: " ")), \(k.hash), \(k.createdAt), \(k.revokedAt), \(k.lastUsedAt))
                ON CONFLICT (id) DO UPDATE SET name = excluded.name, scopes = excluded.scopes,
                    revoked_at = excluded.revoked_at, last_used_at = excluded.last_used_at
                """, logger: self.logger)
        }
    }

    static func apiKeys(_ rows: PostgresRowSequence) async throws -> [APIKeyRecord] {
        var result: [APIKeyRecord] = []
        for try await (id, tenant, name, scopes, hash, created, revoked, used) in rows.decode(
            (String, String, String, String, String, Date, Date?, Date?).self)
        {
            result.append(APIKeyRecord(
                id: id, tenant: tenant, name: name, scopes: scopes.split(separator: " ").map(String.init), hash: hash,
                createdAt: roundedToMillis(created), revokedAt: revoked.map(roundedToMillis), lastUsedAt: used.map(roundedToMillis)))
        }
        return result
    }

    static let apiKeyColumns = "id, tenant, name, scopes, hash, created_at, revoked_at, last_used_at"

    public func apiKeys(tenant: String?) async throws -> [APIKeyRecord] {
        try await withConnection { connection in
            if let tenant {
                return try await Self.apiKeys(connection.query(
                    "SELECT \(unescaped: Self.apiKeyColumns) FROM api_keys WHERE tenant = \(tenant) ORDER BY created_at, id", logger: self.logger))
            }
            return try await Self.apiKeys(connection.query(
                "SELECT \(unescaped: Self.apiKeyColumns) FROM api_keys ORDER BY tenant, created_at, id", logger: self.logger))
        }
    }

    public func apiKey(hash: String) async throws -> APIKeyRecord? {
        try await withConnection { connection in
            try await Self.apiKeys(connection.query(
                "SELECT \(unescaped: Self.apiKeyColumns) FROM api_keys WHERE hash = \(hash)", logger: self.logger)).first
        }
    }

    public func revokeAPIKey(id: String, at: Date) async throws -> Bool {
        try await withConnection { connection in
            let rows = try await connection.query(
                """
                WITH r AS (UPDATE api_keys SET revoked_at = \(at) WHERE id = \(id) AND revoked_at IS NULL RETURNING 1)
                SELECT (SELECT count(*) FROM r) + (SELECT count(*) FROM api_keys WHERE id = \(id))
                """, logger: self.logger)
            for try await count in rows.decode(Int64.self) { return count > 0 }
            return false
        }
    }

    public func appendAudit(tenant: String, actor: String, action: String, detail: JSONValue, at: Date) async throws {
        try await withConnection { connection in
            try await connection.query(
                "INSERT INTO audit_log (at, tenant, actor, action, detail) VALUES (\(at), \(tenant), \(actor), \(action), \(detail.jsonText())::jsonb)",
                logger: self.logger)
        }
    }

    public func auditLog(tenant: String?, limit: Int) async throws -> [AuditEntry] {
        try await withConnection { connection in
            let rows: PostgresRowSequence
            if let tenant {
                rows = try await connection.query(
                    "SELECT id, at, tenant, actor, action, detail::text FROM audit_log WHERE tenant = \(tenant) ORDER BY id DESC LIMIT \(limit)", logger: self.logger)
            } else {
                rows = try await connection.query(
                    "SELECT id, at, tenant, actor, action, detail::text FROM audit_log ORDER BY id DESC LIMIT \(limit)", logger: self.logger)
            }
            var result: [AuditEntry] = []
            for try await (id, at, tenant, actor, action, detail) in rows.decode((Int64, Date, String, String, String, String).self) {
                result.append(AuditEntry(
                    id: id, at: Self.roundedToMillis(at), tenant: tenant, actor: actor, action: action,
                    detail: (try? JSONValue.parse(detail)) ?? .string(detail)))
            }
            return result
        }
    }
}
