import EnchufeCore
import Foundation
import Synchronization
import Logging
@testable import Markets
import TestSupport
import Testing

/// The interconnection view: per direction flow, capacity and utilisation, and the spread, joined
/// across resolutions and from what the store holds.
@Suite struct InterconnectionTests {
    static let t0 = ISO8601.date("2026-04-19T08:00:00Z")!

    func r(_ series: String, _ quantity: String, _ offset: Int, _ resolution: String, _ value: Double, unit: String = "MW") -> Reading {
        Reading(tenant: "t1", series: series, quantity: quantity, ts: Self.t0.addingTimeInterval(Double(offset)), resolution: resolution, value: value, unit: unit)
    }

    func context(_ store: any Store) -> NodeContext {
        NodeContext(
            flow: "f", node: "view", tenant: "t1", store: store, clock: VirtualClock(start: Self.t0),
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }), metrics: HubMetrics())
    }

    func value(_ out: [Reading], _ series: String, _ quantity: String, _ offset: Int) -> Double? {
        out.first { $0.series == series && $0.quantity == quantity && $0.ts == Self.t0.addingTimeInterval(Double(offset)) }?.value
    }

    @Test func anHourlyCapacityServesItsFourQuarterHoursAndQuarterHourlyPricesMakeAnHourlySpread() throws {
        let view = InterconnectionNode(NodeOptions(values: [:])).view
        var known = InterconnectionView.Readings()
        for q in 0..<4 { known.add(r("entsoe:ES>FR", "flow", q * 900, "PT15M", 2700 + Double(q) * 100)) }
        known.add(r("entsoe:ES>FR", "ntc", 0, "PT1H", 3000))
        // Spain's price quarter-hourly, France's hourly: the spread is on Spain's finer grid.
        for q in 0..<4 { known.add(r("entsoe:ES", "price", q * 900, "PT15M", Double(q), unit: "EUR/MWh")) }
        known.add(r("entsoe:FR", "price", 0, "PT1H", 40, unit: "EUR/MWh"))
        let out = view.readings(known, over: Self.t0..<Self.t0.addingTimeInterval(3600))
        #expect((0..<4).map { value(out, "interconnection:ES>FR", "utilisation", $0 * 900) } == [90, 2800.0 / 30, 2900.0 / 30, 100])
        #expect(value(out, "interconnection:ES>FR", "capacity", 1800) == 3000)
        #expect((0..<4).map { value(out, "interconnection:ES-FR", "spread", $0 * 900) } == [-40, -39, -38, -37])
        #expect(out.allSatisfy { $0.quality == .computed })
        #expect(out.filter { $0.series == "interconnection:FR>ES" }.isEmpty, "no FR→ES flow or capacity: nothing for that direction")

        // France quarter-hourly and Spain hourly: the spread is on France's grid, still Spain minus France.
        var flipped = InterconnectionView.Readings()
        flipped.add(r("entsoe:ES", "price", 0, "PT1H", 10, unit: "EUR/MWh"))
        for q in 0..<4 { flipped.add(r("entsoe:FR", "price", q * 900, "PT15M", 20 + Double(q), unit: "EUR/MWh")) }
        let spread = view.readings(flipped, over: Self.t0..<Self.t0.addingTimeInterval(3600)).map(\.value)
        #expect(spread == [-10, -11, -12, -13])
    }

    @Test func anIntervalNotWhollyCoveredIsLeftOutAndAZeroCapacityHasNoUtilisation() {
        let view = InterconnectionNode(NodeOptions(values: [:])).view
        var known = InterconnectionView.Readings()
        known.add(r("entsoe:ES>FR", "flow", 0, "PT1H", 500))
        known.add(r("entsoe:ES>FR", "ntc", 0, "PT15M", 1000))
        known.add(r("entsoe:ES>FR", "ntc", 900, "PT15M", 1000))
        known.add(r("entsoe:FR>ES", "flow", 0, "PT15M", 0))
        known.add(r("entsoe:FR>ES", "ntc", 0, "PT15M", 0))
        let out = view.readings(known, over: Self.t0..<Self.t0.addingTimeInterval(3600))
        #expect(out.filter { $0.series == "interconnection:ES>FR" }.isEmpty, "half an hour of NTC does not cover the hour's flow")
        #expect(out.filter { $0.series == "interconnection:FR>ES" }.map(\.quantity) == ["flow", "capacity"])
        #expect(InterconnectionView.mean([r("s", "q", 0, "PT15M", 1), r("s", "q", 900, "PT15M", 3)], over: Self.t0..<Self.t0.addingTimeInterval(1800)) == 2)
    }

    @Test func aNetFlowSplitsIntoItsTwoDirectionsBySign() {
        let exports = InterconnectionNode(NodeOptions(values: ["net_flow": "ree:10207"])).view
        #expect(exports.inputs.contains(.init(series: "ree:10207", quantity: "interchange")))
        #expect(!exports.inputs.contains(.init(series: "entsoe:ES>FR", quantity: "flow")))
        var known = InterconnectionView.Readings()
        known.add(r("ree:10207", "interchange", 0, "PT1H", -1200))
        known.add(r("ree:10207", "interchange", 3600, "PT1H", 2000))
        for side in ["entsoe:ES>FR", "entsoe:FR>ES"] { known.add(r(side, "ntc", 0, "PT2H", 2000)) }
        let out = exports.readings(known, over: Self.t0..<Self.t0.addingTimeInterval(7200))
        #expect(value(out, "interconnection:ES>FR", "flow", 0) == 0 && value(out, "interconnection:FR>ES", "flow", 0) == 1200)
        #expect(value(out, "interconnection:ES>FR", "utilisation", 3600) == 100)

        let imports = InterconnectionNode(NodeOptions(values: ["net_flow": "ree:10207", "net_flow_positive": "import"])).view
        let flipped = imports.readings(known, over: Self.t0..<Self.t0.addingTimeInterval(7200))
        #expect(value(flipped, "interconnection:ES>FR", "flow", 0) == 1200 && value(flipped, "interconnection:FR>ES", "flow", 3600) == 2000)
    }

    @Test func inputsAlreadyStoredOrSeenEarlierJoinTheOnesArriving() async throws {
        let store = try await PullFlows.memoryStore()
        // France's price came from another flow and is in the store; the NTC passed through this
        // node a moment ago and may not be stored yet.
        _ = try await store.upsert([r("entsoe:FR", "price", 0, "PT1H", 50, unit: "EUR/MWh")])
        let node = InterconnectionNode(NodeOptions(values: [:]))
        let first = try await node.process(Message(readings: [r("entsoe:ES>FR", "ntc", 0, "PT1H", 3000)]), context(store))
        #expect(first.isEmpty, "no flow yet: nothing to say")
        let out = try await node.process(
            Message(readings: [r("entsoe:ES>FR", "flow", 0, "PT1H", 1500), r("entsoe:ES", "price", 0, "PT1H", 20, unit: "EUR/MWh")]), context(store))
        let readings = out.first?.message.readings ?? []
        #expect(value(readings, "interconnection:ES>FR", "utilisation", 0) == 50)
        #expect(value(readings, "interconnection:ES-FR", "spread", 0) == -30)
        #expect(readings.allSatisfy { $0.tenant == "t1" && $0.source == "f/view" })
        #expect(try await node.process(Message(readings: [r("other", "flow", 0, "PT1H", 1)]), context(store)).isEmpty, "readings it does not use")
    }

    @Test func theSameZoneOnBothSidesIsRefused() {
        #expect(InterconnectionNode.spec.check?(NodeOptions(values: ["from_zone": "ES", "to_zone": "ES"])).compactMap(\.option) == ["to_zone"])
    }

    /// The demo flow, as shipped, run twice on one store against a local server answering with its
    /// fixtures: the first run (before a restart) sees the flows up to 11:00 Madrid time, the
    /// second the whole day. The alert is raised in the first run and only cleared in the second.
    @Test func theDemoFlowRaisesTheAlertOnceAndClearsItOnceAcrossARestart() async throws {
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let fixtures = repository.appendingPathComponent("pipelines/fixtures")
        func fixture(_ name: String) throws -> String { try String(contentsOf: fixtures.appendingPathComponent(name), encoding: .utf8) }
        let answers: [String: String] = [
            "A11 10YFR-RTE------C": try fixture("entsoe-flows-es-fr-20260419.xml"), "A11 10YES-REE------0": try fixture("entsoe-flows-fr-es-20260419.xml"),
            "A61 10YFR-RTE------C": try fixture("entsoe-ntc-es-fr-20260419.xml"), "A61 10YES-REE------0": try fixture("entsoe-ntc-fr-es-20260419.xml"),
            "A44 10YES-REE------0": try fixture("entsoe-prices-es-20260419.xml"), "A44 10YFR-RTE------C": try fixture("entsoe-prices-fr-20260419.xml"),
        ]
        let morningOnly = Mutex(true)
        let server = try await FixtureServer.start { request in
            let q = EntsoeNodeTests.query(request)
            guard var body = answers["\(q["documentType"] ?? "") \(q["in_Domain"] ?? "")"] else { return FixtureServer.Answer(status: 404, body: Array("?".utf8)) }
            if q["documentType"] == "A11" && morningOnly.withLock({ $0 }) {
                // The flows published by 11:00: positions 1-52 (22:00Z to 11:00 Madrid).
                body = body.split(separator: "\n", omittingEmptySubsequences: false).filter { line in
                    guard let p = line.range(of: "<position>") else { return true }
                    return Int(line[p.upperBound...].prefix { $0.isNumber })! <= 52
                }.joined(separator: "\n")
            }
            return FixtureServer.Answer(headers: ["Content-Type": "text/xml"], body: Array(body.utf8))
        }
        defer { server.stop() }
        var yaml = try String(contentsOf: repository.appendingPathComponent("pipelines/interconnection.yaml"), encoding: .utf8)
        yaml = yaml.replacingOccurrences(of: "    type: schedule\n    every: 15m\n", with: "    type: test.trigger\n")
        yaml = yaml.replacingOccurrences(
            of: "    token: ${env:ENTSOE_TOKEN:-}\n", with: "    token: test-token\n    base_url: \(server.baseURL)\n    requests_per_minute: 60000\n")
        let store = try await PullFlows.memoryStore()

        let before = CapturedLog()
        try await PullFlows.run(yaml, specs: MarketsModule.specs, store: store, clock: VirtualClock(start: ISO8601.date("2026-04-19T09:05:00Z")!), logger: before.logger())
        // The prices are the whole day's from the start (day-ahead): the spread's episode is over in
        // the first run; the flows stop at 11:00, in the middle of the saturation.
        #expect(try await store.alertEvents(tenant: "default", limit: 10).map { "\($0.name) \($0.state)" }.sorted()
            == ["es-fr-decoupled cleared", "es-fr-decoupled raised", "es-fr-saturated raised"])
        #expect(before.lines.filter { $0.contains("\"state\":\"raised\"") }.count == 2, "\(before.lines)")

        morningOnly.withLock { $0 = false }
        let after = CapturedLog()
        try await PullFlows.run(yaml, specs: MarketsModule.specs, store: store, clock: VirtualClock(start: ISO8601.date("2026-04-19T20:05:00Z")!), logger: after.logger())
        let events = try await store.alertEvents(tenant: "default", limit: 10).filter { $0.name == "es-fr-saturated" }
        #expect(events.map(\.state) == ["cleared", "raised"], "raised once, cleared once")
        #expect(events.first?.at == ISO8601.date("2026-04-19T14:45:00Z"))
        #expect(after.lines.filter { $0.contains("\"state\":\"raised\"") }.isEmpty, "nothing raised again after the restart: \(after.lines)")
        #expect(after.lines.filter { $0.contains("\"state\":\"cleared\"") }.count == 1)
        #expect(!(before.lines + after.lines).contains { $0.contains("test-token") })
    }
}
