import Crypto
import EnchufeCore
import Foundation
import Testing
import TestSupport

/// Signatures and idempotency keys are claimed atomically, released unless the request is taken,
/// and forgotten when they expire; a body of more rows than allowed is refused before it is built.
@Suite struct WebhookMarksTests {
    static let secret = "hook-secret-0123456789"
    static let flow = """
        flow: signed
        tenant: a
        nodes:
          - id: signed
            type: webhook.in
            path: signed
            auth: hmac
            secret: \(secret)
            readings: { series: "{payload.cups}", quantity: consumption, ts: "{payload.ts}", value: "{payload.kwh}", unit: kWh }
            to: [store]
          - id: keyed
            type: webhook.in
            path: keyed
            max_rows: 1000
            readings: { series: "{payload.cups}", quantity: consumption, ts: "{payload.ts}", value: "{payload.kwh}", unit: kWh }
            to: [store]
          - { id: store, type: store.readings, flush_interval: 10ms }
        """

    static func signature(_ body: String, at t: Int) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Data("\(t).\(body)".utf8), using: SymmetricKey(data: Data(secret.utf8)))
        return "t=\(t),v1=" + mac.map { String(format: "%02x", $0) }.joined()
    }

    func serve() async throws -> (APIServer, SQLiteStore, ingest: String) {
        let store = try SQLiteStore(url: "sqlite::memory:")
        try await store.migrate()
        let (_, ingest) = try await APIKeys.create(tenant: "a", scopes: ["ingest"], name: "utility", at: Date(), store: store)
        return (try await APIServer.start(store: store, flowYAML: [Self.flow]), store, ingest)
    }

    func post(_ server: APIServer, _ path: String, _ body: String, _ headers: [String: String]) async throws -> RawHTTPConnection.Answer {
        try await RawHTTPConnection.request(port: server.port, "POST", path, headers: headers, body: Array(body.utf8))
    }

    @Test func ofSixteenConcurrentCopiesOfASignedRequestExactlyOneIsTaken() async throws {
        let (server, store, _) = try await serve()
        defer { server.stop() }
        let body = #"{"cups": "ES0021000000000001AA", "ts": "2026-06-22T10:00:00Z", "kwh": 0.5}"#
        let headers = ["Content-Type": "application/json", "X-Enchufe-Signature": Self.signature(body, at: Int(Date().timeIntervalSince1970))]
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<16 { group.addTask { try await post(server, "/hooks/signed", body, headers).status } }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(statuses.filter { $0 == 202 }.count == 1, "\(statuses.sorted())")
        #expect(statuses.filter { $0 == 401 }.count == 15)
        #expect(try await store.readings(ReadingQuery(tenant: "a")).count == 1)
    }

    @Test func aRefusedRequestDoesNotUseUpItsSignatureOrItsIdempotencyKey() async throws {
        let (server, store, ingest) = try await serve()
        defer { server.stop() }
        let body = #"{"cups": "ES0021000000000001AA", "ts": "2026-06-22T11:00:00Z", "kwh": 0.5}"#
        let signature = Self.signature(body, at: Int(Date().timeIntervalSince1970))
        // Sent with a content type the endpoint does not read: 415, and the signature stays unused.
        #expect(try await post(server, "/hooks/signed", body, ["Content-Type": "image/png", "X-Enchufe-Signature": signature]).status == 415)
        #expect(try await post(server, "/hooks/signed", body, ["Content-Type": "application/json", "X-Enchufe-Signature": signature]).status == 202)
        #expect(try await post(server, "/hooks/signed", body, ["Content-Type": "application/json", "X-Enchufe-Signature": signature]).status == 401, "then it is a replay")

        let auth = ["Authorization": "Bearer \(ingest)", "Idempotency-Key": "batch-7"]
        let bad = #"{"cups": "ES0021000000000001AA", "ts": "2026-06-22T12:00:00Z", "kwh": "lots"}"#
        #expect(try await post(server, "/hooks/keyed", bad, auth.merging(["Content-Type": "application/json"]) { $1 }).status == 400)
        let good = #"{"cups": "ES0021000000000001AA", "ts": "2026-06-22T12:00:00Z", "kwh": 0.25}"#
        let first = try await post(server, "/hooks/keyed", good, auth.merging(["Content-Type": "application/json"]) { $1 })
        #expect(first.status == 202, "the key was not used by the 400: \(first.body)")
        let again = try await post(server, "/hooks/keyed", good, auth.merging(["Content-Type": "application/json"]) { $1 })
        #expect(again.status == 202 && again.body == first.body && again.headers["idempotent-replayed"] == "true")
        #expect(try await store.readings(ReadingQuery(tenant: "a")).count == 2)
    }

    @Test func concurrentCopiesWithOneIdempotencyKeyAreStoredOnceAndAnsweredAlike() async throws {
        let (server, store, ingest) = try await serve()
        defer { server.stop() }
        let body = #"{"cups": "ES0021000000000001AA", "ts": "2026-06-22T13:00:00Z", "kwh": 0.5}"#
        let headers = ["Authorization": "Bearer \(ingest)", "Idempotency-Key": "same", "Content-Type": "application/json"]
        let answers = try await withThrowingTaskGroup(of: RawHTTPConnection.Answer.self) { group in
            for _ in 0..<8 { group.addTask { try await post(server, "/hooks/keyed", body, headers) } }
            return try await group.reduce(into: [RawHTTPConnection.Answer]()) { $0.append($1) }
        }
        let accepted = answers.filter { $0.status == 202 }
        #expect(accepted.count >= 1 && answers.allSatisfy { $0.status == 202 || $0.status == 409 }, "\(answers.map(\.status))")
        #expect(Set(accepted.map(\.body)).count == 1, "one answer, replayed")
        #expect(answers.filter { $0.status == 202 && $0.headers["idempotent-replayed"] == nil }.count == 1)
        #expect(try await store.readings(ReadingQuery(tenant: "a")).count == 1)
    }

    /// A 10 MB CSV of 5 million tiny rows once took 1.25 GB before its 400.
    @Test func aBodyOfMoreRowsThanMaxRowsIsRefusedWholeWith413() async throws {
        let (server, store, ingest) = try await serve()
        defer { server.stop() }
        let auth = ["Authorization": "Bearer \(ingest)"]
        let csv = "cups,ts,kwh\n" + (0..<1001).map { "ES0021000000000001AA,\(1_782_000_000 + $0 * 3600),0.5" }.joined(separator: "\n")
        let refused = try await post(server, "/hooks/keyed", csv, auth.merging(["Content-Type": "text/csv"]) { $1 })
        #expect(refused.status == 413 && refused.body.contains("1001 rows") && refused.body.contains("at most 1000"), "\(refused.body)")
        let array = "[" + Array(repeating: "{}", count: 1001).joined(separator: ",") + "]"
        #expect(try await post(server, "/hooks/keyed", array, auth.merging(["Content-Type": "application/json"]) { $1 }).status == 413)
        let tiny = "[" + Array(repeating: "[1,1,1,1,1,1,1,1,1,1]", count: 10_000).joined(separator: ",") + "]"
        #expect(try await post(server, "/hooks/keyed", tiny, auth.merging(["Content-Type": "application/json"]) { $1 }).status == 413, "many tiny values")
        #expect(try await store.readings(ReadingQuery(tenant: "a")).isEmpty)
        let fits = "cups,ts,kwh\n" + (0..<1000).map { "ES0021000000000001AA,\(1_782_000_000 + $0 * 3600),0.5" }.joined(separator: "\n") + "\n\n"
        #expect(try await post(server, "/hooks/keyed", fits, auth.merging(["Content-Type": "text/csv"]) { $1 }).status == 202)
    }

    @Test func anHMACSecretShorterThan16CharactersIsAValidationError() {
        for secret in ["\"\"", "short", "'               '"] {
            let yaml = "flow: x\nnodes:\n  - { id: h, type: webhook.in, path: x, auth: hmac, secret: \(secret), to: [s] }\n  - { id: s, type: store.readings }\n"
            let (_, diagnostics) = FlowLoader(registry: NodeRegistry(CoreNodes.specs), environment: [:]).load(text: yaml, file: "x.yaml")
            #expect(diagnostics.contains { $0.message.contains("at least 16 characters") }, "\(secret): \(diagnostics)")
        }
    }

    @Test func theSignatureHeaderParserTakesOnlyWholeSecondsAndSixtyFourHexDigits() throws {
        let hex = String(repeating: "ab", count: 32)
        #expect(try WebhookSignature.fields("t=1700000000,v1=\(hex)").timestamp == 1_700_000_000)
        for bad in ["t=1e9,v1=\(hex)", "t=nan,v1=\(hex)", "t=,v1=\(hex)", "t=1700000000,v1=abc", "t=-5,v1=\(hex)", "v1=\(hex)",
            "t=99999999999999999999,v1=\(hex)", String(repeating: "t=1,", count: 1000)]
        {
            #expect(throws: WebhookSignature.Problem.self, "\(bad.prefix(40))") { try WebhookSignature.fields(bad) }
        }
    }
}
