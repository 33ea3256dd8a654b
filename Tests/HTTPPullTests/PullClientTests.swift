import EnchufeCore
import Foundation
@testable import HTTPPull
import Logging
import Synchronization
import TestSupport
import Testing

@Suite struct PullClientTests {
    static let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    func context(canned: CannedAnswers? = nil) throws -> NodeContext {
        NodeContext(
            flow: "f", node: "prices", tenant: "t", store: try SQLiteStore(url: "sqlite::memory:"),
            clock: VirtualClock(start: Date(timeIntervalSince1970: 0)), logger: Self.quiet, metrics: HubMetrics(),
            cannedAnswers: canned)
    }

    func client(_ metrics: HubMetrics = HubMetrics(), attempts: Int = 3, timeout: Duration = .seconds(5)) -> PullClient {
        PullClient(flow: "f", node: "prices", type: "redata.prices", metrics: metrics, timeout: timeout, retry: RetryPolicy(attempts: attempts, backoff: .seconds(1)))
    }

    func kind(_ body: () async throws -> Void) async -> PullError? {
        do {
            try await body()
            return nil
        } catch let error as PullError {
            return error
        } catch {
            return PullError(.malformed, "unexpected \(error)")
        }
    }

    @Test func anAnswerIsFetchedWithTheUserAgentAndDecoded() async throws {
        let server = try await FixtureServer.start { _ in .json(#"{"ok": "sí"}"#) }
        defer { server.stop() }
        let response = try await client().get(URL(string: "\(server.baseURL)/es/datos/mercados/precios?x=1")!, headers: ["X-Key": "k"], context: context())
        #expect(try response.json() == ["ok": "sí"])
        #expect(server.requests.first?.headers["user-agent"]?.hasPrefix("Enchufe/") == true)
        #expect(server.requests.first?.headers["x-key"] == "k")
        #expect(server.requests.first?.query == "x=1")
    }

    @Test func failuresAreClassifiedAndOnlyTransientOnesAreRetried() async throws {
        let calls = Mutex(0)
        let server = try await FixtureServer.start { request in
            calls.withLock { $0 += 1 }
            switch request.path {
            case "/401": return .json(#"{"descripcion": "API key invalido", "estado": 401}"#, status: 401)
            case "/404": return .json(#"{"descripcion": "No hay datos que satisfagan esos criterios", "estado": 404}"#, status: 404)
            case "/html": return FixtureServer.Answer(status: 404, headers: ["Content-Type": "text/html"], body: Array("<!DOCTYPE html><html><body>Not Found</body></html>".utf8))
            case "/500": return .json("oops", status: 500)
            case "/429": return FixtureServer.Answer(status: 429, headers: ["Retry-After": "7"], body: Array("slow down".utf8))
            default: return .json("{}")
            }
        }
        defer { server.stop() }
        let metrics = HubMetrics()
        let c = client(metrics, attempts: 3)
        let ctx = try context()
        func get(_ path: String) async -> PullError? {
            await kind { _ = try await c.get(URL(string: server.baseURL + path)!, context: ctx) }
        }

        #expect(await get("/401")?.kind == .auth)
        #expect(calls.withLock { $0 } == 1, "an auth failure is not retried")
        #expect(await get("/404")?.kind == .noData)
        #expect(await get("/html")?.kind == .upstream)
        #expect(calls.withLock { $0 } == 3)
        let failed = await get("/500")
        #expect(failed?.kind == .upstream && failed?.status == 500)
        #expect(calls.withLock { $0 } == 6, "a 500 is tried three times")
        let limited = await get("/429")
        #expect(limited?.kind == .rateLimit && limited?.retryAfter == .seconds(7))
        #expect(calls.withLock { $0 } == 9)
        let text = metrics.text()
        #expect(text.contains(#"enchufe_pull_requests_total{flow="f",node="prices",result="rate_limit"} 3"#), "\(text)")
        #expect(text.contains(#"enchufe_pull_requests_total{flow="f",node="prices",result="upstream"} 4"#))
    }

    @Test func aRateLimitWithRetryAfterWaitsThatLongThenSucceeds() async throws {
        let calls = Mutex(0)
        let server = try await FixtureServer.start { _ in
            let n = calls.withLock { c -> Int in
                c += 1
                return c
            }
            return n == 1 ? FixtureServer.Answer(status: 429, headers: ["Retry-After": "42"], body: []) : .json(#"{"n": 2}"#)
        }
        defer { server.stop() }
        let ctx = try context()
        let before = ctx.clock.now()
        let response = try await client().get(URL(string: server.baseURL + "/x")!, context: ctx)
        #expect(try response.json() == ["n": 2])
        #expect(ctx.clock.now().timeIntervalSince(before) == 42, "the virtual clock moved by exactly the Retry-After")
    }

    @Test func aSlowAnswerTimesOutAsAnUpstreamFailure() async throws {
        let server = try await FixtureServer.start { _ in .init(body: Array("{}".utf8), delay: .seconds(5)) }
        defer { server.stop() }
        let error = await kind { _ = try await client(attempts: 1, timeout: .milliseconds(300)).get(URL(string: server.baseURL + "/slow")!, context: context()) }
        #expect(error?.kind == .upstream)
        #expect(error?.message.contains("within") == true, "\(error?.message ?? "")")
    }

    @Test func bodiesAreDecodedByCharsetThenUTF8ThenISO885915() async throws {
        let bytes: [UInt8] = [0x7B, 0x22, 0x65, 0x73, 0x74, 0x61, 0x63, 0x69, 0xF3, 0x6E, 0x22, 0x3A, 0x22, 0xA4, 0x20, 0x4D, 0x61, 0x64, 0x72, 0x69, 0x64, 0x22, 0x7D]  // {"estación":"€ Madrid"} in ISO-8859-15
        let server = try await FixtureServer.start { request in
            switch request.path {
            case "/labelled": return FixtureServer.Answer(headers: ["Content-Type": "application/json;charset=ISO-8859-15"], body: bytes)
            case "/unlabelled": return FixtureServer.Answer(headers: ["Content-Type": "text/plain"], body: bytes)
            default: return FixtureServer.Answer(headers: ["Content-Type": "application/json"], body: Array(#"{"estación":"€ Madrid"}"#.utf8))
            }
        }
        defer { server.stop() }
        let ctx = try context()
        for path in ["/labelled", "/unlabelled", "/utf8"] {
            let response = try await client().get(URL(string: server.baseURL + path)!, context: ctx)
            #expect(try response.json() == ["estación": "€ Madrid"], "\(path)")
        }
    }

    @Test func flowTestsAnswerFromCannedAnswersWithoutTheNetwork() async throws {
        let canned = CannedAnswers(["/es/datos/x": Data(#"{"canned": true}"#.utf8)])
        let response = try await client().get(URL(string: "http://127.0.0.1:9/es/datos/x?y=1")!, context: context(canned: canned))
        #expect(try response.json() == ["canned": true])
        let missing = await kind { _ = try await client().get(URL(string: "http://127.0.0.1:9/other")!, context: context(canned: canned)) }
        #expect(missing?.message.contains("no canned answer for /other") == true)
    }
}

@Suite struct HostRateLimitTests {
    @Test func requestsToOneHostAreSpacedEvenlyAndHostsAreIndependent() async {
        let limits = HostRateLimits()
        let t0 = ContinuousClock.now
        // 40 a minute (AEMET's default): one every 1.5 s, whoever asks.
        let turns = [
            await limits.reserve(host: "opendata.aemet.es", perMinute: 40, now: t0),
            await limits.reserve(host: "opendata.aemet.es", perMinute: 40, now: t0),
            await limits.reserve(host: "opendata.aemet.es", perMinute: 40, now: t0 + .milliseconds(100)),
        ]
        #expect(turns.map { $0 - t0 } == [.zero, .milliseconds(1500), .milliseconds(3000)])
        #expect(await limits.reserve(host: "apidatos.ree.es", perMinute: 40, now: t0) == t0, "another host has its own turn")
        let later = t0 + .seconds(60)
        #expect(await limits.reserve(host: "opendata.aemet.es", perMinute: 40, now: later) == later, "after a quiet minute, no wait")
    }
}
