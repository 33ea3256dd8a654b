import EnchufeCore
import Foundation
import Testing
import TestSupport

/// What an outside test did to the HTTP API, each now answered with a 4xx that says what is wrong.
@Suite struct HostileRequestTests {
    static let flows = [
        """
        flow: ingest
        tenant: a
        nodes:
          - id: hook
            type: webhook.in
            path: meters
            readings: { series: "{payload.cups}", quantity: consumption, ts: "{payload.ts}", value: "{payload.kwh}", unit: kWh }
            to: [store]
          - id: open
            type: webhook.in
            path: open
            auth: none
            to: [store]
          - { id: store, type: store.readings, flush_interval: 10ms }
        """,
        """
        flow: other
        tenant: b
        nodes:
          - { id: tick, type: schedule, every: 1h, run_at_start: false, to: [log] }
          - { id: log, type: log }
        """,
    ]

    func serve(requireKeys: Bool = false, limits: ConnectionLimits = ConnectionLimits()) async throws -> (APIServer, ingest: String, adminB: String) {
        let store = try SQLiteStore(url: "sqlite::memory:")
        try await store.migrate()
        let (_, ingest) = try await APIKeys.create(tenant: "a", scopes: ["ingest"], name: "utility", at: Date(), store: store)
        let (_, adminB) = try await APIKeys.create(tenant: "b", scopes: ["admin"], name: "ops-b", at: Date(), store: store)
        return (try await APIServer.start(store: store, flowYAML: Self.flows, requireKeys: requireKeys, limits: limits), ingest, adminB)
    }

    /// Python's urllib sends the whole body before it reads an answer: the 413 must still reach it.
    @Test func aBodyOverTheLimitSentWithoutExpectGetsIts413WithinSeconds() async throws {
        let (server, ingest, _) = try await serve()
        defer { server.stop() }
        // The client's socket gives up when a write or read makes no progress for 10 s: the hub that
        // stopped reading without answering made it hang there.
        let tooLarge = try await RawHTTPConnection.request(
            port: server.port, "POST", "/hooks/meters", headers: ["Authorization": "Bearer \(ingest)", "Content-Type": "application/json"],
            body: [UInt8](repeating: 0x20, count: 11 << 20), timeout: .seconds(10))
        #expect(tooLarge.status == 413 && tooLarge.body.contains("at most 10485760"), "\(tooLarge.status) \(tooLarge.body)")

        let supply = try await RawHTTPConnection.request(
            port: server.port, "PUT", "/api/v1/supplies/ES0021000000000001AA", headers: ["Content-Type": "application/json"],
            body: [UInt8](repeating: 0x20, count: 2 << 20), timeout: .seconds(3))
        #expect(supply.status == 413 || supply.status == 401, "the supply route has a body limit too: \(supply.status)")

        // Far beyond the limit (more than 64 MiB to throw away), the hub stops reading and closes.
        let connection = try RawHTTPConnection(port: server.port, timeout: .seconds(3))
        let head = "POST /hooks/meters HTTP/1.1\r\nHost: 127.0.0.1:\(server.port)\r\nAuthorization: Bearer \(ingest)\r\nContent-Length: \(200 << 20)\r\n\r\n"
        try await connection.write(Array(head.utf8))
        let chunk = [UInt8](repeating: 0x20, count: 1 << 20)
        var refusedAfter = 0
        for i in 0..<200 {
            do { try await connection.write(chunk) } catch {
                refusedAfter = i
                break
            }
        }
        #expect(refusedAfter > 0 && refusedAfter < 120, "the connection ends after the bound, not after the whole body (\(refusedAfter) MiB)")
    }

    /// One request with an absurd time took the hub down; non-finite values were stored or lost;
    /// 20 elements nested 511 deep took 33 s. Each is a 400 now, and the hub answers on.
    @Test func absurdTimesNonFiniteValuesAndDeepNestingAre400sAndTheHubGoesOn() async throws {
        let (server, ingest, _) = try await serve()
        defer { server.stop() }
        let headers = ["Authorization": "Bearer \(ingest)", "Content-Type": "application/json"]
        func post(_ body: String) async throws -> RawHTTPConnection.Answer {
            try await RawHTTPConnection.request(port: server.port, "POST", "/hooks/meters", headers: headers, body: Array(body.utf8))
        }
        for ts in ["1e300", "-1e300", "1e17", "\"nan\"", "\"inf\"", "\"1582-10-10T00:00:00Z\"", "\"+293506-01-01T00:00:00Z\""] {
            let answer = try await post(#"{"cups": "ES0021000000000001AA", "ts": \#(ts), "kwh": 1}"#)
            #expect(answer.status == 400 && answer.body.contains("'ts'"), "\(ts): \(answer.status) \(answer.body)")
        }
        for kwh in ["\"inf\"", "\"nan\"", "\"-inf\"", "1e400"] {
            let answer = try await post(#"{"cups": "ES0021000000000001AA", "ts": "2026-06-01T00:00:00Z", "kwh": \#(kwh)}"#)
            #expect(answer.status == 400, "\(kwh): \(answer.body)")
        }
        let deep = "[" + Array(repeating: String(repeating: "[", count: 511) + String(repeating: "]", count: 511), count: 20).joined(separator: ",") + "]"
        let started = ContinuousClock.now
        let nested = try await post(deep)
        #expect(nested.status == 400 && nested.body.contains("nested deeper than 64"))
        #expect(ContinuousClock.now - started < .seconds(10), "refused at once, not after minutes of nesting")
        #expect(try await RawHTTPConnection.request(port: server.port, "GET", "/healthz").status == 200)
    }

    @Test func keylessOperatorAccessNeedsThisMachineByAddressAndNameAndNoOtherSite() async throws {
        let (server, _, adminB) = try await serve()
        defer { server.stop() }
        func status(_ method: String, _ path: String, _ headers: [String: String] = [:]) async throws -> Int {
            try await RawHTTPConnection.request(port: server.port, method, path, headers: headers).status
        }
        #expect(try await status("GET", "/api/v1/flows") == 200, "the operator on this machine, no key")
        #expect(try await status("GET", "/api/v1/flows", ["Host": "localhost:\(server.port)"]) == 200)
        #expect(try await status("GET", "/api/v1/flows", ["Host": "attacker.example:\(server.port)"]) == 401, "a DNS-rebound name")
        #expect(try await status("GET", "/api/v1/flows", ["X-Forwarded-For": "203.0.113.9"]) == 401, "through a proxy")
        #expect(try await status("GET", "/api/v1/flows", ["Forwarded": "for=203.0.113.9"]) == 401)
        #expect(try await status("GET", "/metrics", ["Host": "attacker.example"]) == 401, "metrics too")
        #expect(try await status("GET", "/metrics") == 200)

        // A page of another site posting to the hub (a simple request needs no CORS preflight).
        #expect(try await status("POST", "/api/v1/flows/reload", ["Origin": "http://evil.example", "Content-Type": "text/plain"]) == 401)
        #expect(try await status("POST", "/api/v1/flows/reload", ["Sec-Fetch-Site": "cross-site"]) == 401)
        #expect(try await status("DELETE", "/api/v1/dead-letters", ["Origin": "null"]) == 401)
        #expect(try await status("POST", "/hooks/open", ["Origin": "http://evil.example", "Content-Type": "text/plain"]) == 403, "auth: none webhooks too")
        #expect(try await status("POST", "/hooks/open", ["Host": "attacker.example", "Content-Type": "text/plain"]) == 403)
        // The status page's own requests (same origin) and the CLI's (no Origin) go through.
        let sameOrigin = try await status("POST", "/api/v1/flows/reload", ["Origin": "http://127.0.0.1:\(server.port)", "Sec-Fetch-Site": "same-origin"])
        #expect(sameOrigin == 409, "keyless and local: reached the route (this hub was not loaded from files)")

        // Tenant b's admin key sees b's flows only, in the flow list and in the metrics.
        let flows = try await RawHTTPConnection.request(port: server.port, "GET", "/api/v1/flows", headers: ["Authorization": "Bearer \(adminB)"])
        #expect(flows.status == 200 && flows.body.contains("\"other\"") && !flows.body.contains("\"ingest\""))
        let metrics = try await RawHTTPConnection.request(port: server.port, "GET", "/metrics", headers: ["Authorization": "Bearer \(adminB)"])
        #expect(metrics.status == 200 && metrics.body.contains("flow=\"other\"") && !metrics.body.contains("flow=\"ingest\""), "\(metrics.body.prefix(300))")
    }

    @Test func lesserFindingsAreRefusedOrAnsweredAsDocumented() async throws {
        let (server, _, adminB) = try await serve()
        defer { server.stop() }
        #expect(try await RawHTTPConnection.request(port: server.port, "TRACE", "/healthz").status == 405)
        #expect(try await RawHTTPConnection.request(port: server.port, "GET", "/api/v1/dead-letters?limit=").status == 200, "an empty limit is no limit")
        let bad = try await RawHTTPConnection.request(port: server.port, "GET", "/api/v1/readings?from=2025-10-26T02:00:00%2B99:99", headers: ["Authorization": "Bearer \(adminB)"])
        #expect(bad.status == 400 && bad.body.contains("from"), "\(bad.body)")
        let ancient = try await RawHTTPConnection.request(port: server.port, "GET", "/api/v1/readings?from=1582-10-10", headers: ["Authorization": "Bearer \(adminB)"])
        #expect(ancient.status == 400)
        // A resolution whose seconds overflow an Int stopped the hub, as the absurd time did.
        for resolution in ["P99999999999999999D", "PT9999999999999999999H", "PT-15M", "P36501D"] {
            let answer = try await RawHTTPConnection.request(
                port: server.port, "GET", "/api/v1/readings?resolution=\(resolution)", headers: ["Authorization": "Bearer \(adminB)"])
            #expect(answer.status == 400 && answer.body.contains("resolution"), "\(resolution): \(answer.status) \(answer.body)")
        }
        #expect(try await RawHTTPConnection.request(port: server.port, "GET", "/healthz").status == 200)
    }

    @Test func aSecretWithQuotesOrBackslashesIsRedactedInJSONToo() {
        let secret = #"pa"ss\word-123"#
        let redactor = Redactor(secrets: [secret])
        let json = JSONValue.object(["password": .string(secret)]).jsonText()
        #expect(!redactor.redact(json).contains("word-123"), "\(redactor.redact(json))")
        #expect(redactor.redact("plain \(secret) text") == "plain *** text")
    }

    @Test func aCAUThatCouldLeaveTheFolderIsAValidationError() {
        for cau in ["../../etc/x", "a/b", "", "ES 0031"] {
            let yaml = "flow: x\nnodes:\n  - { id: t, type: schedule, every: 1d, to: [f] }\n  - { id: f, type: file.out, path: out, format: coefficients, cau: \"\(cau)\" }\n"
            let (_, diagnostics) = FlowLoader(registry: NodeRegistry(CoreNodes.specs), environment: [:]).load(text: yaml, file: "x.yaml")
            #expect(diagnostics.contains { $0.message.contains("is not a CAU") }, "\(cau): \(diagnostics)")
        }
    }

    /// A tap watcher that stops reading held its connection (and one of the hub's 64 watcher places)
    /// for ever, the tap's write waiting on it: a write that has waited longer than the hub's
    /// patience closes the connection. (The client cannot see that without reading: the end of the
    /// connection is queued behind what it did not read. The hub sees it.)
    @Test func aTapWatcherThatStopsReadingIsDisconnected() async throws {
        let store = try SQLiteStore(url: "sqlite::memory:")
        try await store.migrate()
        let (_, ingest) = try await APIKeys.create(tenant: "a", scopes: ["ingest"], name: "utility", at: Date(), store: store)
        // A high rate, so that the kernel's buffers (megabytes on loopback) fill within seconds.
        let server = try await APIServer.start(store: store, flowYAML: Self.flows, tapWatchers: TapWatchers(rate: 10_000, patience: .seconds(1)))
        defer { server.stop() }
        let watcher = try RawHTTPConnection(port: server.port, timeout: .seconds(20), receiveBuffer: 4096)
        try await watcher.write(Array("GET /api/v1/tap?flow=ingest&node=hook HTTP/1.1\r\nHost: 127.0.0.1:\(server.port)\r\n\r\n".utf8))
        let tap = try #require(server.hub.tap(flow: "ingest", node: "hook", tenant: nil))
        let deadline = ContinuousClock.now + .seconds(60)  // a bound for failure, not a pace
        while !tap.isWatched && ContinuousClock.now < deadline { await Task.yield() }
        #expect(tap.isWatched)
        // Each message is shown cut to 16 KiB; thousands of them fill every buffer on the way.
        let note = String(repeating: "x", count: 20_000)
        var closed = false, posted = 0
        while !closed && ContinuousClock.now < deadline {
            let body = #"{"cups":"ES0021000000000001AA","ts":\#(1_780_000_000 + posted * 3600),"kwh":1,"note":"\#(note)"}"#
            let answer = try await RawHTTPConnection.request(
                port: server.port, "POST", "/hooks/meters", headers: ["Authorization": "Bearer \(ingest)", "Content-Type": "application/json"], body: Array(body.utf8))
            #expect(answer.status == 202, "\(answer.body)")
            posted += 1
            closed = !tap.isWatched  // its place is given back once its connection is closed
        }
        #expect(closed, "the watcher that never reads is disconnected (after \(posted) messages)")
        #expect(posted > 100, "the kernel's buffers took \(posted) messages of 16 KiB before the hub's writes waited")
        // The hub still serves everyone else.
        #expect(try await RawHTTPConnection.request(port: server.port, "GET", "/healthz").status == 200)
    }

    @Test func requireKeysTurnsTheKeylessOperatorOff() async throws {
        let (server, _, adminB) = try await serve(requireKeys: true)
        defer { server.stop() }
        #expect(try await RawHTTPConnection.request(port: server.port, "GET", "/api/v1/flows").status == 401)
        #expect(try await RawHTTPConnection.request(port: server.port, "GET", "/metrics").status == 401)
        #expect(try await RawHTTPConnection.request(port: server.port, "GET", "/api/v1/flows", headers: ["Authorization": "Bearer \(adminB)"]).status == 200)
        #expect(try await RawHTTPConnection.request(port: server.port, "GET", "/healthz").status == 200)
    }

    /// 1,100 idle sockets took a hub with 1,024 descriptors down. Idle connections are closed, and
    /// past the connection limit the rest wait in the backlog until there is room.
    @Test func idleConnectionsAreClosedAndTheConnectionLimitHolds() async throws {
        let (server, _, _) = try await serve(limits: ConnectionLimits(connections: 4, idleTimeout: .seconds(1)))
        defer { server.stop() }
        // Timed from before the idle connections open: their second of idleness cannot end sooner,
        // however busy the machine (timed from after, a slow start ate into it).
        let started = ContinuousClock.now
        let idle = try (0..<4).map { _ in try RawHTTPConnection(port: server.port, timeout: .seconds(4)) }
        // A fifth connection is accepted by the kernel but not by the hub until the idle ones go.
        let health = try await RawHTTPConnection.request(port: server.port, "GET", "/healthz", timeout: .seconds(6))
        #expect(health.status == 200)
        #expect(ContinuousClock.now - started >= .milliseconds(900), "it waited for room")
        for connection in idle { #expect(await connection.closedByServer(), "an idle connection is closed") }
        // A request whose headers never end is closed the same way.
        let slow = try RawHTTPConnection(port: server.port, timeout: .seconds(4))
        try await slow.write(Array("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ".utf8))
        #expect(await slow.closedByServer())
    }
}
