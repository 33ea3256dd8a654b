import EnchufeCore
import Foundation
@testable import HTTPPull
import Synchronization
import TestSupport
import Testing

@Suite struct HTTPRequestNodeTests {
    static func flow(_ server: FixtureServer, path: String, extra: String = "", payloads: String) -> String {
        """
        flow: out
        nodes:
          - id: tick
            type: test.trigger
            payloads: \(payloads)
            to: [readings]
          - id: readings
            type: readings
            series: "{payload.cups}"
            quantity: consumption
            ts: "{payload.ts}"
            value: "=msg.payload.kwh"
            unit: kWh
            to: [send]
          - id: send
            type: http.request
            url: "\(server.baseURL)\(path)/{payload.cups}"
            headers: { Authorization: "Bearer t0ken", X-Community: "{payload.community}" }
            retry: { attempts: 3, backoff: 2s }
        \(extra.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n"))
        """
    }

    static let payloads = #"[{cups: ES1, ts: "2025-06-01T10:00:00Z", kwh: 1.5, community: sol}]"#

    static func run(_ yaml: String, store: SQLiteStore) async throws -> VirtualClock {
        let clock = VirtualClock(start: Date(timeIntervalSince1970: 1_750_000_000))
        try await PullFlows.run(yaml, specs: HTTPModule.specs, store: store, clock: clock)
        return clock
    }

    static func store() async throws -> SQLiteStore { try await PullFlows.memoryStore() }

    @Test func eachMessageIsSentWithItsTemplatesAndAnswered2xx() async throws {
        let server = try await FixtureServer.start { _ in .init(status: 202, body: Array("{}".utf8)) }
        defer { server.stop() }
        let store = try await Self.store()
        _ = try await Self.run(Self.flow(server, path: "/api", payloads: Self.payloads), store: store)
        let request = try #require(server.requests.first)
        #expect(request.method == "POST" && request.path == "/api/ES1")
        #expect(request.headers["authorization"] == "Bearer t0ken" && request.headers["x-community"] == "sol")
        #expect(request.headers["content-type"] == "application/json")
        #expect(try JSONValue.parse(request.body)["kwh"] == 1.5)
        #expect(try await store.deadLetters(tenant: nil, limit: 10).isEmpty)
    }

    @Test func readingsAsCSVWithPUT() async throws {
        let server = try await FixtureServer.start { _ in .init(status: 200, body: []) }
        defer { server.stop() }
        _ = try await Self.run(Self.flow(server, path: "/csv", extra: "method: PUT\nbody: readings\nformat: csv", payloads: Self.payloads), store: try await Self.store())
        let request = try #require(server.requests.first)
        #expect(request.method == "PUT" && request.headers["content-type"] == "text/csv")
        #expect(request.body == "series,quantity,ts,resolution,value,unit,quality\nES1,consumption,2025-06-01T10:00:00Z,PT0S,1.5,kWh,measured\n")
    }

    @Test func a5xxIsRetriedHonouringRetryAfterAndA4xxGoesToTheDeadLettersAtOnce() async throws {
        let calls = Mutex(0)
        let server = try await FixtureServer.start { request in
            if request.path.hasSuffix("ES2") { return .json(#"{"error": "unknown supply"}"#, status: 422) }
            let n = calls.withLock { c -> Int in
                c += 1
                return c
            }
            switch n {
            case 1: return .json("busy", status: 503)
            case 2: return .init(status: 429, headers: ["Retry-After": "30"], body: [])
            default: return .init(status: 200, body: [])
            }
        }
        defer { server.stop() }
        let store = try await Self.store()
        let payloads = #"[{cups: ES1, ts: "2025-06-01T10:00:00Z", kwh: 1}, {cups: ES2, ts: "2025-06-01T10:00:00Z", kwh: 2}]"#
        let clock = try await Self.run(Self.flow(server, path: "/api", payloads: payloads), store: store)
        #expect(server.requests.filter { $0.path.hasSuffix("ES1") }.count == 3, "503, then 429, then 200")
        #expect(clock.now().timeIntervalSince1970 - 1_750_000_000 >= 30, "the 429's Retry-After was waited")
        #expect(server.requests.filter { $0.path.hasSuffix("ES2") }.count == 1, "a 4xx is not retried")
        let dead = try await store.deadLetters(tenant: nil, limit: 10)
        #expect(dead.count == 1 && dead[0].node == "send" && dead[0].error.contains("422") && dead[0].error.contains("unknown supply"))
    }

    @Test func theExampleLoadsAndCSVWithoutReadingsIsRefused() {
        let problems = PullFlows.exampleProblems(HTTPModule.specs, environment: ["BILLING_TOKEN": "x"])
        #expect(problems == [])
        let registry = NodeRegistry(CoreNodes.specs + [PullFlows.triggerSpec] + HTTPModule.specs)
        let yaml = "flow: f\nnodes:\n  - { id: t, type: test.trigger, to: [send] }\n  - { id: send, type: http.request, url: \"http://x\", format: csv }\n"
        let diagnostics = FlowLoader(registry: registry, environment: [:]).load(text: yaml, file: "f.yaml").1.map(\.description)
        #expect(diagnostics.count == 1 && diagnostics[0].contains("format: csv sends readings"), "\(diagnostics)")
    }
}
