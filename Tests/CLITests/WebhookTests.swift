import Crypto
import EnchufeCore
import Foundation
import TestSupport
import Testing
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

extension CLITests {
    struct Posted {
        var status: Int
        var body: String
        var headers: [String: String]
    }

    func post(_ url: String, body: String, type: String = "application/json", headers: [String: String] = [:]) async throws -> Posted {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = "POST"
        request.httpBody = Data(body.utf8)
        request.setValue(type, forHTTPHeaderField: "Content-Type")
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        let (data, response) = try await URLSession.shared.data(for: request)
        let http = response as? HTTPURLResponse
        var fields: [String: String] = [:]
        for (name, value) in http?.allHeaderFields ?? [:] { fields[String(describing: name).lowercased()] = String(describing: value) }
        return Posted(status: http?.statusCode ?? 0, body: String(decoding: data, as: UTF8.self), headers: fields)
    }

    static func signature(_ body: String, secret: String, at t: Int) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Data("\(t).\(body)".utf8), using: SymmetricKey(data: Data(secret.utf8)))
        return "t=\(t),v1=" + mac.map { String(format: "%02x", $0) }.joined()
    }

    /// `webhook.in` served by `enchufe run`: keys and scopes per tenant, bodies read whole (a bad one
    /// stores nothing), 202 only once durable, idempotent retries, HMAC with its clock and replays.
    @Test func webhooksAcceptDurablyRefuseClearlyAndStoreNothingOfABadRequest() async throws {
        let dir = try projectDirectory(flow: """
            flow: curves
            tenant: sol
            nodes:
              - id: curves
                type: webhook.in
                path: utility-x/curves
                max_body: 2000
                readings: { series: "{payload.cups}", quantity: consumption, ts: "{payload.ts}", value: "=msg.payload.kwh", unit: kWh }
                to: [store]
              - id: signed
                type: webhook.in
                path: meters/signed
                auth: hmac
                secret: s3cret-hook-0123456789
                readings: { series: "{payload.cups}", quantity: consumption, ts: "{payload.ts}", value: "=msg.payload.kwh", unit: kWh }
                to: [store]
              - id: files
                type: webhook.in
                path: utility-x/files
                to: [store]
              - { id: store, type: store.readings, flush_interval: 20ms }
            """, named: "curves")
        let db = dir.appendingPathComponent("var/enchufe.sqlite").path
        func key(_ tenant: String, _ scope: String) throws -> String {
            try #require(try run(["keys", "create", "--tenant", tenant, "--scope", scope], in: dir).output.split(separator: "\n").first { $0.hasPrefix("enk_") }.map(String.init))
        }
        let ingest = try key("sol", "ingest"), reader = try key("sol", "read"), stranger = try key("luna", "ingest")
        func stored() throws -> String { try sqlite(db, "SELECT count(*) FROM readings") }

        let hub = try RunningHub(["run", "--http", "127.0.0.1:0"], in: dir)
        defer { hub.terminate() }
        let url = hub.base + "/hooks/utility-x/curves"
        let batch = #"[{"cups": "ES0021000000000001AA", "ts": "2025-10-26T00:00:00Z", "kwh": 0.5}, {"cups": "ES0021000000000001AA", "ts": "2025-10-26T01:00:00Z", "kwh": 0.75}]"#
        let auth = ["Authorization": "Bearer \(ingest)"]

        let accepted = try await post(url, body: batch, headers: auth)
        #expect(accepted.status == 202 && accepted.body.contains(#""accepted":2"#), "\(accepted.body)")
        #expect(try stored() == "2", "durable when 202 comes back")

        #expect(try await post(url, body: batch).status == 401)
        #expect(try await post(url, body: batch, headers: ["Authorization": "Bearer \(reader)"]).status == 403, "read scope cannot ingest")
        let other = try await post(url, body: batch, headers: ["Authorization": "Bearer \(stranger)"])
        #expect(other.status == 403 && other.body.contains("another tenant"))
        #expect(try await post(hub.base + "/hooks/nowhere", body: batch, headers: auth).status == 404)

        // A bad request stores nothing of itself, and says where it is wrong.
        let badElement = #"[{"cups": "ES0021000000000001AA", "ts": "2025-10-26T02:00:00Z", "kwh": 1}, {"cups": "ES0021000000000001AA", "ts": "yesterday", "kwh": 1}]"#
        let bad = try await post(url, body: badElement, headers: auth)
        #expect(bad.status == 400 && bad.body.contains("element 1") && bad.headers["content-type"] == "application/problem+json", "\(bad.body)")
        let notJSON = try await post(url, body: "{\"cups\": ", headers: auth)
        #expect(notJSON.status == 400 && notJSON.body.contains("not JSON"))
        let ndjson = try await post(url, body: #"{"cups": "ES1", "ts": "2025-10-26T03:00:00Z", "kwh": 1}"# + "\n\nnot json\n", type: "application/x-ndjson", headers: auth)
        #expect(ndjson.status == 400 && ndjson.body.contains("line 3"), "\(ndjson.body)")
        let csv = try await post(url, body: "cups,ts,kwh\nES1,2025-10-26T03:00:00Z,1\nES1,2025-10-26T04:00:00Z\n", type: "text/csv", headers: auth)
        #expect(csv.status == 400 && csv.body.contains("line 3: 2 columns, the header has 3"))
        #expect(try await post(url, body: "<a/>", type: "application/xml", headers: auth).status == 415)
        #expect(try await post(url, body: String(repeating: " ", count: 3000) + batch, headers: auth).status == 413)
        #expect(try stored() == "2", "nothing of the refused requests was stored")

        let goodCSV = try await post(url, body: "cups,ts,kwh\nES1,2025-10-26T03:00:00Z,1.25\n", type: "text/csv", headers: auth)
        let afterCSV = try stored()
        #expect(goodCSV.status == 202 && afterCSV == "3")

        // A retried request with the same Idempotency-Key gets the first answer and stores nothing twice.
        let retried = #"[{"cups": "ES2", "ts": "2025-10-26T05:00:00Z", "kwh": 2}]"#
        let first = try await post(url, body: retried, headers: auth.merging(["Idempotency-Key": "req-42"]) { $1 })
        let again = try await post(url, body: retried, headers: auth.merging(["Idempotency-Key": "req-42"]) { $1 })
        #expect(first.status == 202 && again.status == 202 && first.body == again.body && again.headers["idempotent-replayed"] == "true")
        #expect(try sqlite(db, "SELECT count(*) FROM audit_log WHERE action = 'ingest'") == "3", "the replayed answer stored nothing")
        let ingestID = String(ingest.split(separator: "_")[1])
        #expect(try sqlite(db, "SELECT DISTINCT actor FROM audit_log WHERE action = 'ingest'") == "key:\(ingestID)", "each ingest names its key")

        // The utilities' curve files, recognised by their first line; one reading per hour, DST days included.
        let curves = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("EnchufeCoreTests/Curves")
        let cch = try String(contentsOf: curves.appendingPathComponent("cch_cons_distribuidora.csv"), encoding: .utf8)
        let files = hub.base + "/hooks/utility-x/files"
        let cchAnswer = try await post(files, body: cch, type: "text/csv", headers: auth)
        #expect(cchAnswer.status == 202, "\(cchAnswer.body)")
        #expect(try sqlite(db, "SELECT count(*) FROM readings WHERE series = 'ES0031000000000001BJ0F'") == "49", "24 + 25 hours")
        let p5d = try String(contentsOf: curves.appendingPathComponent("P5D_0031_0762_20241028.0"), encoding: .utf8)
        #expect(try await post(files, body: p5d, type: "text/plain", headers: auth).status == 202)
        let badCurve = try await post(files, body: "CUPS;Fecha;Hora;Consumo_kWh\nES9;01/06/2024;1;0,5\nES9;01/06/2024;1;0,6\n", type: "text/csv", headers: auth)
        #expect(badCurve.status == 400 && badCurve.body.contains("line 3") && badCurve.body.contains("appears twice"), "\(badCurve.status) \(badCurve.body)")
        #expect(try sqlite(db, "SELECT count(*) FROM readings WHERE series = 'ES9'") == "0")

        // HMAC: the right signature; a wrong secret; a stale time; the same signature again.
        let signed = hub.base + "/hooks/meters/signed"
        let body = #"{"cups": "ES3", "ts": "2025-10-26T06:00:00Z", "kwh": 3}"#
        let now = Int(Date().timeIntervalSince1970)
        let good = Self.signature(body, secret: "s3cret-hook-0123456789", at: now)
        #expect(try await post(signed, body: body, headers: ["X-Enchufe-Signature": good]).status == 202)
        let replay = try await post(signed, body: body, headers: ["X-Enchufe-Signature": good])
        #expect(replay.status == 401 && replay.body.contains("replay"))
        let wrong = try await post(signed, body: body, headers: ["X-Enchufe-Signature": Self.signature(body, secret: "guess", at: now)])
        #expect(wrong.status == 401 && wrong.body.contains("does not match"))
        let stale = try await post(signed, body: body, headers: ["X-Enchufe-Signature": Self.signature(body, secret: "s3cret-hook-0123456789", at: now - 600)])
        #expect(stale.status == 401 && stale.body.contains("older than 5 minutes"))
        #expect(try await post(signed, body: body).status == 401)
        #expect(hub.stop() == 0)
        let total = try stored()
        #expect(total == "\(5 + 49 + 25)", "the P5D file's 25 consumption hours are the CSV's 27/10 hours again (upserts); its surplus is new")
        #expect(!hub.output.contains("s3cret-hook-0123456789") && !hub.output.contains(ingest))
    }
}

extension CLITests {
    /// A 202 means durable: the hub killed with SIGKILL right after answering loses nothing of it.
    @Test func aKillRightAfterA202LosesNothing() async throws {
        let dir = try projectDirectory(flow: """
            flow: curves
            nodes:
              - id: curves
                type: webhook.in
                path: curves
                readings: { series: "{payload.cups}", quantity: consumption, ts: "{payload.ts}", value: "=msg.payload.kwh", unit: kWh }
                to: [store]
              - { id: store, type: store.readings, batch_size: 500, flush_interval: 1s }
            """, named: "curves")
        let key = try #require(try run(["keys", "create", "--tenant", "default", "--scope", "ingest"], in: dir).output.split(separator: "\n").first { $0.hasPrefix("enk_") }.map(String.init))
        let db = dir.appendingPathComponent("var/enchufe.sqlite").path
        let hub = try RunningHub(["run", "--http", "127.0.0.1:0"], in: dir)
        defer { hub.terminate() }
        var accepted = 0
        for batch in 0..<5 {
            let rows = (0..<200).map { i in #"{"cups": "ES\#(batch)", "ts": "\#(ISO8601.string(Date(timeIntervalSince1970: 1_700_000_000 + Double(i) * 3600)))", "kwh": \#(i)}"# }
            let answer = try await post(hub.base + "/hooks/curves", body: "[" + rows.joined(separator: ",") + "]", headers: ["Authorization": "Bearer \(key)"])
            #expect(answer.status == 202)
            accepted += 200
        }
        // The sink's batch would still be filling for up to a second: a 202 waited for the commit.
        kill(hub.process.processIdentifier, SIGKILL)
        hub.process.waitUntilExit()
        #expect(try sqlite(db, "SELECT count(*) FROM readings") == "\(accepted)")
    }
}
