import Crypto
import EnchufeCore
import Foundation
import TestSupport
import Testing
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

extension CLITests {
    func getWithKey(_ url: String, key: String?) async throws -> Posted {
        var request = URLRequest(url: URL(string: url)!)
        if let key { request.setValue("Bearer \(key)", forHTTPHeaderField: "Authorization") }
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = response as? HTTPURLResponse
        var fields: [String: String] = [:]
        for (name, value) in http?.allHeaderFields ?? [:] { fields[String(describing: name).lowercased()] = String(describing: value) }
        return Posted(status: http?.statusCode ?? 0, body: String(decoding: data, as: UTF8.self), headers: fields)
    }

    /// `enchufe keys create|list|revoke`, and keys on the HTTP API: a key is printed once and stored
    /// as a hash; a route answers 401 without a valid key, 403 without the scope, and only the key's
    /// tenant's data.
    @Test func keysAreShownOnceGuardTheAPIAndSeeOnlyTheirTenant() async throws {
        let dir = try projectDirectory(flow: "flow: idle\nnodes:\n  - { id: tick, type: schedule, every: 1d, run_at_start: false, to: [log] }\n  - { id: log, type: log }\n", named: "idle")
        let db = dir.appendingPathComponent("var/enchufe.sqlite").path
        try FileManager.default.createDirectory(atPath: dir.appendingPathComponent("var").path, withIntermediateDirectories: true)
        let store = try SQLiteStore(path: db)
        try await store.migrate()
        try await store.saveSupply(SupplyPoint(tenant: "sol", cups: "ES0021000000000001AA", tariff: "2.0TD", zone: "peninsula"))
        try await store.saveSupply(SupplyPoint(tenant: "luna", cups: "ES0031000000000002BB", tariff: "3.0TD", zone: "baleares"))
        try await store.close()

        let created = try run(["keys", "create", "--tenant", "sol", "--scope", "read", "--name", "billing"], in: dir)
        #expect(created.status == 0, "\(created.output)")
        let solKey = try #require(created.output.split(separator: "\n").first { $0.hasPrefix("enk_") }.map(String.init))
        let ingest = try run(["keys", "create", "--tenant", "sol", "--scope", "ingest"], in: dir)
        let ingestKey = try #require(ingest.output.split(separator: "\n").first { $0.hasPrefix("enk_") }.map(String.init))
        let luna = try run(["keys", "create", "--tenant", "luna", "--scope", "read"], in: dir)
        let lunaKey = try #require(luna.output.split(separator: "\n").first { $0.hasPrefix("enk_") }.map(String.init))
        #expect(try run(["keys", "create", "--tenant", "sol", "--scope", "write"], in: dir).output.contains("scopes must be among read, ingest, admin"))

        let list = try run(["keys", "list"], in: dir)
        #expect(list.output.split(separator: "\n").count == 3)
        #expect(!list.output.contains(solKey) && !list.output.contains(String(solKey.suffix(20))), "keys are never shown again")
        let digest = SHA256.hash(data: Data(solKey.utf8)).map { String(format: "%02x", $0) }.joined()
        #expect(try sqlite(db, "SELECT count(*) FROM api_keys WHERE hash = '\(digest)'") == "1", "the key's SHA-256 is stored")
        // Everything after `enk_ID_` (the secret itself may contain `_`: a short piece of it could
        // turn up in a hash by chance).
        let secret = String(solKey.split(separator: "_", maxSplits: 2)[2])
        #expect(!(try sqlite(db, "SELECT group_concat(id || name || scopes || hash || tenant, ' ') FROM api_keys")).contains(secret), "the key itself is not")

        let hub = try RunningHub(["run", "--http", "127.0.0.1:0"], in: dir)
        defer { hub.terminate() }
        let url = hub.base + "/api/v1/supplies"
        let none = try await getWithKey(url, key: nil)
        #expect(none.status == 401 && none.headers["content-type"] == "application/problem+json" && none.headers["www-authenticate"] == "Bearer")
        #expect(try await getWithKey(url, key: "enk_00000000_madeup").status == 401)
        let wrongScope = try await getWithKey(url, key: ingestKey)
        #expect(wrongScope.status == 403 && wrongScope.body.contains("needs 'read'"))
        let sol = try await getWithKey(url, key: solKey)
        #expect(sol.status == 200 && sol.body.contains("ES0021000000000001AA") && !sol.body.contains("ES0031"), "\(sol.body)")
        let lunas = try await getWithKey(url, key: lunaKey)
        #expect(lunas.status == 200 && lunas.body.contains("ES0031000000000002BB") && !lunas.body.contains("ES0021"))

        let id = String(solKey.split(separator: "_")[1])
        #expect(try run(["keys", "revoke", id], in: dir).output.contains("revoked \(id)"))
        #expect(try await getWithKey(url, key: solKey).status == 401, "a revoked key stops working at once")
        #expect(try run(["keys", "revoke", "nothere"], in: dir).status != 0)
        #expect(hub.stop() == 0)
        #expect(try sqlite(db, "SELECT group_concat(action, ',') FROM (SELECT action FROM audit_log ORDER BY id)") == "key.create,key.create,key.create,key.revoke")
    }
}
