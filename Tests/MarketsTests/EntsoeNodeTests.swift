import EnchufeCore
import Foundation
import HTTPPull
@testable import Markets
import TestSupport
import Testing

/// `entsoe` in running flows against a local server answering as the Transparency Platform does.
@Suite struct EntsoeNodeTests {
    static let token = "d3b07384-secret-token-c157"

    static func flow(_ server: FixtureServer, _ options: String) -> String {
        """
        flow: grid
        nodes:
          - id: tick
            type: test.trigger
            to: [entsoe]
          - id: entsoe
            type: entsoe
            token: \(token)
            base_url: \(server.baseURL)
            requests_per_minute: 60000
            request_attempts: 3
            request_backoff: 1s
        \(options.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n"))
            to: [store]
          - id: store
            type: store.readings
        """
    }

    static func query(_ request: FixtureServer.Request) -> [String: String] {
        var fields: [String: String] = [:]
        for item in URLComponents(string: "http://x/?\(request.query ?? "")")?.queryItems ?? [] { fields[item.name] = item.value }
        return fields
    }

    static func run(_ yaml: String, store: any Store, at now: String, logs: CapturedLog) async throws {
        try await PullFlows.run(yaml, specs: MarketsModule.specs, store: store, clock: VirtualClock(start: ISO8601.date(now)!), logger: logs.logger())
    }

    static func readings(_ store: any Store) async throws -> [Reading] {
        try await store.changes(tenant: "default", after: 0, limit: 10_000).map(\.reading).sorted { $0.ts < $1.ts }
    }

    @Test func dayAheadPricesOfAMadridDayAreAskedInUTCAndStoredWithoutTheIntradaySeries() async throws {
        let body = EntsoeDocumentTests.publication([
            .init(contract: "A07", start: "2024-06-01T22:00Z", points: (1...96).map { ($0, 999) }),
            .init(start: "2024-06-01T22:00Z", points: [(1, 41.5), (3, 39), (96, 55)]),
        ])
        let server = try await FixtureServer.start { _ in FixtureServer.Answer(headers: ["Content-Type": "text/xml"], body: body) }
        defer { server.stop() }
        let store = try await PullFlows.memoryStore()
        let logs = CapturedLog()
        try await Self.run(Self.flow(server, "document: prices\nzone: ES\nday: 2024-06-02"), store: store, at: "2024-06-03T08:00:00Z", logs: logs)

        let request = try #require(server.requests.first)
        #expect(request.path == "/api")
        let query = Self.query(request)
        #expect(query["documentType"] == "A44" && query["in_Domain"] == "10YES-REE------0" && query["out_Domain"] == "10YES-REE------0")
        #expect(query["periodStart"] == "202406012200" && query["periodEnd"] == "202406022200")
        #expect(query["securityToken"] == Self.token)
        let prices = try await Self.readings(store)
        #expect(prices.count == 96)
        #expect(prices.allSatisfy { $0.series == "entsoe:ES" && $0.quantity == "price" && $0.unit == "EUR/MWh" && $0.resolution == "PT15M" })
        #expect(prices.prefix(3).map(\.value) == [41.5, 41.5, 39], "A03: position 2 repeats position 1")
        #expect(!prices.contains { $0.value == 999 })

        // Whole, so recorded: not asked again.
        try await Self.run(Self.flow(server, "document: prices\nzone: ES\nday: 2024-06-02"), store: store, at: "2024-06-03T09:00:00Z", logs: logs)
        #expect(server.requests.count == 1)
    }

    @Test func flowsBetweenTwoZonesAreAskedInToOutAndStoredInMW() async throws {
        let body = EntsoeDocumentTests.publication([
            .init(curve: "A01", start: "2024-06-01T22:00Z", resolution: "PT60M", points: (1...24).map { ($0, Double(1000 + $0)) }, valueName: "quantity")
        ])
        let server = try await FixtureServer.start { _ in FixtureServer.Answer(headers: ["Content-Type": "text/xml"], body: body) }
        defer { server.stop() }
        let store = try await PullFlows.memoryStore()
        try await Self.run(
            Self.flow(server, "document: flows\nfrom_zone: ES\nto_zone: FR\nday: 2024-06-02"), store: store, at: "2024-06-03T08:00:00Z", logs: CapturedLog())
        let query = Self.query(try #require(server.requests.first))
        #expect(query["documentType"] == "A11" && query["in_Domain"] == "10YFR-RTE------C" && query["out_Domain"] == "10YES-REE------0")
        let flows = try await Self.readings(store)
        #expect(flows.count == 24 && flows.allSatisfy { $0.series == "entsoe:ES>FR" && $0.quantity == "flow" && $0.unit == "MW" && $0.resolution == "PT1H" })
        #expect(flows.first?.value == 1001 && flows.last?.value == 1024)
    }

    @Test func anAcknowledgementStoresNothingAndTheDayIsAskedAgain() async throws {
        let ack = Array("""
            <?xml version="1.0" encoding="UTF-8"?>
            <Acknowledgement_MarketDocument xmlns="urn:iec62325.351:tc57wg16:451-1:acknowledgementdocument:7:0">
              <Reason><code>999</code><text>No matching data found</text></Reason>
            </Acknowledgement_MarketDocument>
            """.utf8)
        let server = try await FixtureServer.start { _ in FixtureServer.Answer(headers: ["Content-Type": "text/xml"], body: ack) }
        defer { server.stop() }
        let store = try await PullFlows.memoryStore()
        let logs = CapturedLog()
        let yaml = Self.flow(server, "day: 2024-06-02")
        try await Self.run(yaml, store: store, at: "2024-06-03T08:00:00Z", logs: logs)
        try await Self.run(yaml, store: store, at: "2024-06-03T09:00:00Z", logs: logs)
        #expect(server.requests.count == 2)
        #expect(try await Self.readings(store).isEmpty)
        #expect(try await store.deadLetters(tenant: nil, limit: 10).isEmpty)
        #expect(logs.lines.contains { $0.contains("No matching data found") })
    }

    @Test func aBanIsNotAskedAgainInALoopAndTheTokenShowsNowhere() async throws {
        // The platform's answer to a banned token; its page even repeats the request.
        let server = try await FixtureServer.start { request in
            FixtureServer.Answer(
                status: 429, headers: ["Content-Type": "text/plain", "Retry-After": "600"],
                body: Array("Too many requests: \(request.path)?\(request.query ?? "")".utf8))
        }
        defer { server.stop() }
        let store = try await PullFlows.memoryStore()
        let logs = CapturedLog()
        try await Self.run(Self.flow(server, "from: 2024-06-01\nuntil: 2024-06-03"), store: store, at: "2024-06-04T08:00:00Z", logs: logs)
        #expect(server.requests.count == 1, "one request: a ban is not retried, and the pull stops")
        let dead = try await store.deadLetters(tenant: nil, limit: 10)
        #expect(dead.count == 1 && dead[0].error.contains("rate_limit") || dead.count == 1 && dead[0].error.contains("429"), "\(dead.map(\.error))")
        #expect(!logs.lines.isEmpty)
        #expect(!logs.lines.contains { $0.contains(Self.token) }, "the token is in a log line")
        #expect(!dead.contains { $0.error.contains(Self.token) || $0.message.jsonText().contains(Self.token) }, "the token is in a dead letter")
    }

    @Test func theExampleLoadsAndAnUnknownZoneIsRefused() {
        #expect(PullFlows.exampleProblems(MarketsModule.specs, environment: ["ENTSOE_TOKEN": "t"]) == [])
        let problems = EntsoeNode.spec.check?(NodeOptions(values: ["zone": "Spain"])) ?? []
        #expect(problems.map(\.option) == ["zone"])
    }
}
