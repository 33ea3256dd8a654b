import Foundation
import Logging
import Testing
import TestSupport

@testable import EnchufeCore

@Suite struct AlertNodeTests {
    static let t0 = ISO8601.date("2026-07-14T08:00:00Z")!

    func context(_ store: any Store, node: String = "saturated") -> NodeContext {
        NodeContext(
            flow: "interconnection", node: node, tenant: "t1", store: store, clock: VirtualClock(start: ISO8601.date("2026-07-14T20:00:00Z")!),
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }), metrics: HubMetrics())
    }

    func memoryStore() async throws -> SQLiteStore {
        let store = try SQLiteStore(path: ":memory:")
        try await store.migrate()
        return store
    }

    /// Quarter-hourly readings from t0 (nil: no reading for that quarter).
    func quarters(_ values: [Double?], series: String = "interconnection:ES>FR", quantity: String = "utilisation", from start: Int = 0) -> [Reading] {
        values.enumerated().compactMap { i, v in
            v.map {
                Reading(
                    tenant: "t1", series: series, quantity: quantity, ts: Self.t0.addingTimeInterval(Double(start + i) * 900), resolution: "PT15M",
                    value: $0, unit: "%", quality: .computed)
            }
        }
    }

    let saturation: [String: JSONValue] = [
        "name": "es-fr-saturated", "message": "ES-FR interconnection saturated: price decoupling likely",
        "series": "interconnection:*", "quantity": "utilisation", "above": 90, "clear_below": 85, "for": "30m",
    ]

    func events(_ outputs: [Output]) -> [(state: String, at: String, since: String, value: Double)] {
        outputs.map { o in
            let p = o.message.payload
            return (p["state"]?.stringValue ?? "", p["at"]?.stringValue ?? "", p["since"]?.stringValue ?? "", p["value"]?.doubleValue ?? .nan)
        }
    }

    func at(_ quarter: Int) -> String { ISO8601.string(Self.t0.addingTimeInterval(Double(quarter) * 900)) }

    @Test func raisedAfterHoldingForItsDurationClearedOnlyBelowTheHysteresisAndOneMessagePerChange() async throws {
        let store = try await memoryStore()
        let node = try AlertNode(NodeOptions(values: saturation))
        // 92 starts a run; 95 completes 30 minutes of it: raised. 88 is under 90 but not under 85:
        // still raised. 84 clears it. The last 95 alone does not hold for 30 minutes.
        let readings = quarters([80, 92, 95, 91, 88, 84, 83, 95])
        let out = try await node.process(Message(readings: readings), context(store))
        let got = events(out)
        #expect(got.map(\.state) == ["raised", "cleared"])
        #expect(got.first?.at == at(2) && got.first?.since == at(1) && got.first?.value == 95)
        #expect(got.last?.at == at(5) && got.last?.value == 84)
        #expect(out.first?.message.payload["message"]?.stringValue == "ES-FR interconnection saturated: price decoupling likely")
        #expect(out.first?.message.attributes["state"] == "raised")

        let key = AlertKey(tenant: "t1", flow: "interconnection", node: "saturated", series: "interconnection:ES>FR", quantity: "utilisation")
        let state = try await store.alert(key)
        #expect(state?.raised == false && state?.pendingSince == Self.t0.addingTimeInterval(7 * 900), "the last 95 is a run begun")
        #expect(try await store.alertEvents(tenant: "t1", limit: 10).map(\.raised) == [false, true])
    }

    @Test func theSameReadingsAgainChangeNothingAndARunCarriesOverToTheNextMessage() async throws {
        let store = try await memoryStore()
        let node = try AlertNode(NodeOptions(values: saturation))
        let first = quarters([80, 93])
        #expect(try await node.process(Message(readings: first), context(store)).isEmpty, "93 for 15 minutes is not 30")
        #expect(try await node.process(Message(readings: first), context(store)).isEmpty, "the same day again")
        // The pull brings the day so far again, one quarter more: the run begun at 93 completes.
        let out = try await node.process(Message(readings: quarters([80, 93, 94])), context(store))
        #expect(events(out).map(\.state) == ["raised"])
        #expect(events(out).first?.since == at(1))
    }

    @Test func aGapBetweenReadingsBreaksTheRun() async throws {
        let store = try await memoryStore()
        let node = try AlertNode(NodeOptions(values: saturation))
        let out = try await node.process(Message(readings: quarters([95, nil, 96, nil, 97])), context(store))
        #expect(out.isEmpty, "no two quarter-hours in a row")
    }

    @Test func aRestartCarriesOnFromTheStoredStateAndASecondInstanceDoesNotRaiseItAgain() async throws {
        let store = try await memoryStore()
        let episode = quarters([70, 91, 95, 96, 97, 92, 80, 70])
        // Instance one sees the morning: raised.
        let before = try await AlertNode(NodeOptions(values: saturation)).process(Message(readings: Array(episode.prefix(4))), context(store))
        #expect(events(before).map(\.state) == ["raised"])
        // After a restart, a new node (nothing in memory) sees the whole day pulled again, and a
        // second instance sees the same at the same time: between them one message, the clearing.
        let restarted = try AlertNode(NodeOptions(values: saturation))
        let other = try AlertNode(NodeOptions(values: saturation))
        async let a = restarted.process(Message(readings: episode), context(store))
        async let b = other.process(Message(readings: episode), context(store))
        let after = try await a + b
        #expect(events(after).map(\.state) == ["cleared"])
        #expect(events(after).first?.at == at(6))
        #expect(try await store.alertEvents(tenant: "t1", limit: 10).map(\.raised) == [false, true], "raised once, cleared once")
    }

    @Test func magnitudesBelowThresholdsAndLuaConditions() async throws {
        let store = try await memoryStore()
        let spread = try AlertNode(NodeOptions(values: ["name": "decoupled", "quantity": "spread", "above": 0.5, "absolute": true]))
        let s = quarters([0.2, -3, -0.4, 0.1], series: "interconnection:ES-FR", quantity: "spread")
        let spreadOut = try await spread.process(Message(readings: s), context(store, node: "decoupled"))
        #expect(events(spreadOut).map(\.state) == ["raised", "cleared"], "|−3| is above 0.5; with no clear_below, under 0.5 clears")

        let negative = try AlertNode(NodeOptions(values: ["name": "negative", "below": 0, "clear_above": 5]))
        let prices = quarters([10, 0, -2, 3, 6], series: "entsoe:ES", quantity: "price")
        #expect(events(try await negative.process(Message(readings: prices), context(store, node: "negative"))).map(\.at) == [at(1), at(4)])

        let lua = try AlertNode(NodeOptions(values: [
            "name": "lua", "condition": "item.value > 50 and item.series == 'a'", "clear_condition": "item.value < 10",
        ]))
        let mixed = quarters([60, 30], series: "a", quantity: "q") + quarters([70], series: "b", quantity: "q", from: 2) + quarters([5], series: "a", quantity: "q", from: 3)
        let luaOut = try await lua.process(Message(readings: mixed), context(store, node: "lua"))
        #expect(luaOut.map { "\($0.message.payload["series"]?.stringValue ?? "") \($0.message.payload["state"]?.stringValue ?? "")" } == ["a raised", "a cleared"])
        // 30 neither raises anything nor clears (clear_condition is value < 10); 5 after a gap clears.
    }

    @Test func optionsThatDoNotMakeOneRuleAreRefused() {
        func problems(_ values: [String: JSONValue]) -> [String] {
            AlertNode.check(NodeOptions(values: ["name": "x"].merging(values) { a, _ in a })).compactMap(\.option)
        }
        #expect(problems([:]) == ["above"])
        #expect(problems(["above": 1, "below": 0]) == ["above"])
        #expect(problems(["above": 90, "clear_below": 95]) == ["clear_below"])
        #expect(problems(["below": 0, "clear_below": 1]) == ["clear_below"])
        #expect(problems(["above": 90, "clear_condition": "true"]) == ["clear_condition"])
        #expect(problems(["condition": "item.value > 1"]).isEmpty)
    }

    @Test func theAlertsRouteShowsAReadKeyItsTenantsAlertsAndFromLoopbackEveryTenants() async throws {
        let store = try await memoryStore()
        for (tenant, series, values) in [("t1", "interconnection:ES>FR", [95.0, 96]), ("t1", "interconnection:FR>ES", [10.0, 12]), ("t2", "interconnection:PT>ES", [99.0, 99])] {
            var ctx = context(store)
            ctx.tenant = tenant
            let readings = quarters(values, series: series).map { r in
                var r = r
                r.tenant = tenant
                return r
            }
            _ = try await AlertNode(NodeOptions(values: saturation)).process(Message(readings: readings), ctx)
        }
        let (_, reader) = try await APIKeys.create(tenant: "t1", scopes: ["read"], name: "app", at: Date(), store: store)
        let remote = try await APIServer.start(store: store, host: "0.0.0.0")
        defer { remote.stop() }
        #expect(try await remote.get("/api/v1/alerts", key: nil).status == 401)
        let all = try JSONValue.parse(try await remote.get("/api/v1/alerts", key: reader).body)
        #expect(all["alerts"]?.arrayValue?.map { "\($0["series"]?.stringValue ?? "") \($0["state"]?.stringValue ?? "")" }
            == ["interconnection:ES>FR raised", "interconnection:FR>ES cleared"])
        #expect(all["recent"]?.arrayValue?.map { $0["state"]?.stringValue } == ["raised"])
        #expect(all["alerts"]?.arrayValue?.first?["changed_at"]?.stringValue == at(1), "raised by the second 30-minute reading")
        let raised = try JSONValue.parse(try await remote.get("/api/v1/alerts?state=raised", key: reader).body)
        #expect(raised["alerts"]?.arrayValue?.count == 1)
        let bad = try await remote.get("/api/v1/alerts?state=open", key: reader)
        #expect(bad.status == 400 && bad.body.contains("state must be"))
        #expect(try await remote.get("/api/v1/alerts?limit=0", key: reader).status == 400)

        let local = try await APIServer.start(store: store)
        defer { local.stop() }
        let everyone = try JSONValue.parse(try await local.get("/api/v1/alerts", key: nil).body)
        #expect(Set(everyone["alerts"]?.arrayValue?.compactMap { $0["tenant"]?.stringValue } ?? []) == ["t1", "t2"])
    }
}
