import EnchufeCore
import Foundation
import HTTPPull
@testable import REData
import Synchronization
import TestSupport
import Testing

/// The REData and ESIOS nodes in running flows, against a local server answering like the APIs.
@Suite struct REDataNodeTests {
    static func store() async throws -> SQLiteStore { try await PullFlows.memoryStore() }

    static func stored(_ store: any Store) async throws -> [Reading] {
        try await store.changes(tenant: "default", after: 0, limit: 100_000).map(\.reading)
    }

    static func pricesAnswer(_ day: LocalDay, pvpc: Bool = true) -> String {
        SyntheticAnswers.redataPrices(day: day.description, pvpc: pvpc)
    }

    static func day(_ request: FixtureServer.Request) -> String { request.startDay }

    static func flow(_ server: FixtureServer, node: String, payloads: String = "[null]") -> String {
        """
        flow: prices
        nodes:
          - id: tick
            type: test.trigger
            payloads: \(payloads)
            to: [prices]
          - id: prices
            base_url: \(server.baseURL)
            request_attempts: 2
            requests_per_minute: 60000
            request_backoff: 5s
            timeout: 2s
        \(node.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n"))
            to: [store]
          - id: store
            type: store.readings
        """
    }

    /// Whether the virtual clock moved by `seconds`, give or take the store's flush interval (1 s).
    static func waited(_ clock: VirtualClock, since start: String, about seconds: Double) -> Bool {
        let moved = clock.now().timeIntervalSince(Fixtures.utc(start))
        return moved >= seconds && moved <= seconds + 2
    }

    static func run(_ yaml: String, store: any Store, at now: String, metrics: HubMetrics = HubMetrics()) async throws -> VirtualClock {
        let clock = VirtualClock(start: ISO8601.date(now)!)
        try await PullFlows.run(yaml, specs: REDataModule.specs, store: store, clock: clock, metrics: metrics)
        return clock
    }

    @Test func theAutumnDSTDayIsStoredWith25HoursAndNotAskedForAgain() async throws {
        let fixture = try Fixtures.text("precios-mercados-tiempo-real_2021-10-31_dst-autumn_25h")
        let server = try await FixtureServer.start { _ in .json(fixture) }
        defer { server.stop() }
        let store = try await Self.store()
        let yaml = Self.flow(server, node: "type: redata.prices\nday: 2021-10-31")
        _ = try await Self.run(yaml, store: store, at: "2021-11-02T10:00:00Z")

        let request = try #require(server.requests.first)
        #expect(request.path == "/es/datos/mercados/precios-mercados-tiempo-real")
        #expect(request.query == "start_date=2021-10-31T00:00&end_date=2021-10-31T23:59&time_trunc=hour")
        #expect(request.headers["user-agent"]?.hasPrefix("Enchufe/") == true)
        let readings = try await Self.stored(store)
        let pvpc = readings.filter { $0.series == "ree:1001:8741" }.sorted { $0.ts < $1.ts }
        #expect(pvpc.count == 25)
        #expect(readings.filter { $0.series == "ree:600:8741" }.count == 25)
        // 02:00+02:00 then 02:00+01:00: two hours, an hour apart in UTC.
        #expect(pvpc[2].ts == Fixtures.utc("2021-10-31T00:00:00Z") && pvpc[3].ts == Fixtures.utc("2021-10-31T01:00:00Z"))
        #expect(pvpc.allSatisfy { $0.resolution == "PT1H" && $0.unit == "EUR/MWh" && $0.source == "prices/prices" })

        // The day is complete and committed: asked again (a restart, the next trigger), it is not fetched.
        _ = try await Self.run(yaml, store: store, at: "2021-11-03T10:00:00Z")
        #expect(server.requests.count == 1, "no duplicate request for a day already fetched")
        #expect(try await Self.stored(store).count == 50)
    }

    @Test func theSpringDSTDayIsCompleteWith23Hours() async throws {
        let server = try await FixtureServer.start { request in .json(Self.pricesAnswer(LocalDay(request.startDay)!)) }
        defer { server.stop() }
        let store = try await Self.store()
        // Asked the evening before, the day is complete (every hour of it there) though not over yet.
        let yaml = Self.flow(server, node: "type: redata.prices\nday: tomorrow")
        _ = try await Self.run(yaml, store: store, at: "2022-03-26T20:00:00Z")
        let pvpc = try await Self.stored(store).filter { $0.series == "ree:1001:8741" }.map(\.ts).sorted()
        #expect(pvpc.count == 23)
        #expect(pvpc[1] == Fixtures.utc("2022-03-27T00:00:00Z") && pvpc[2] == Fixtures.utc("2022-03-27T01:00:00Z"), "01:00 CET then 03:00 CEST")
        _ = try await Self.run(yaml, store: store, at: "2022-03-26T21:00:00Z")
        #expect(server.requests.count == 1, "a complete day is not asked for again")
    }

    @Test func aRangeResumesFromItsCheckpointsAndBackFillsTheGap() async throws {
        let failing = Mutex(true)
        let server = try await FixtureServer.start { request in
            let day = Self.day(request)
            if day == "2021-06-02", failing.withLock({ $0 }) { return .json("upstream down", status: 503) }
            return .json(Self.pricesAnswer(LocalDay(day)!))
        }
        defer { server.stop() }
        let store = try await Self.store()
        let yaml = Self.flow(server, node: "type: redata.prices\nfrom: 2021-06-01\nuntil: 2021-06-03")
        let metrics = HubMetrics()
        _ = try await Self.run(yaml, store: store, at: "2021-06-10T10:00:00Z", metrics: metrics)
        // 06-01 fetched; 06-02 failed twice (request_attempts: 2) and stopped the pull; 06-03 waits.
        #expect(server.requests.map(Self.day) == ["2021-06-01", "2021-06-02", "2021-06-02"])
        #expect(PullFlows.requests(metrics, node: "prices", result: "upstream") == 2)
        #expect(try await Self.stored(store).count == 48)
        #expect(try await store.deadLetters(tenant: nil, limit: 10).isEmpty, "a pull that fetched something is not a failure")

        failing.withLock { $0 = false }
        _ = try await Self.run(yaml, store: store, at: "2021-06-10T11:00:00Z")
        #expect(server.requests.map(Self.day) == ["2021-06-01", "2021-06-02", "2021-06-02", "2021-06-02", "2021-06-03"], "only the gap is asked for")
        let readings = try await Self.stored(store)
        #expect(readings.count == 3 * 48, "no gap")
        let hours = Set(readings.filter { $0.series == "ree:1001:8741" }.map(\.ts))
        #expect(hours.count == 72 && hours.min() == Fixtures.utc("2021-05-31T22:00:00Z") && hours.max() == Fixtures.utc("2021-06-03T21:00:00Z"))
    }

    @Test func tomorrowsPVPCNotPublishedYetIsAskedAgainNotAFailure() async throws {
        let calls = Mutex(0)
        let server = try await FixtureServer.start { request in
            let n = calls.withLock { c -> Int in
                c += 1
                return c
            }
            return .json(Self.pricesAnswer(LocalDay(Self.day(request))!, pvpc: n > 2))
        }
        defer { server.stop() }
        let store = try await Self.store()
        // 19:00 in Madrid on 2021-05-31: the spot price for tomorrow is out, PVPC comes around 20:30.
        let clock = try await Self.run(
            Self.flow(server, node: "type: redata.prices\nday: tomorrow"), store: store, at: "2021-05-31T17:00:00Z")
        #expect(server.requests.count == 3, "asked again twice, then PVPC was there")
        #expect(Self.waited(clock, since: "2021-05-31T17:00:00Z", about: 30 * 60), "every not_yet_retry (15m)")
        let readings = try await Self.stored(store)
        #expect(readings.filter { $0.series == "ree:1001:8741" }.count == 24)
        #expect(readings.filter { $0.series == "ree:600:8741" }.count == 24)
        #expect(try await store.deadLetters(tenant: nil, limit: 10).isEmpty)
    }

    @Test func pricesStillUnpublishedAfterTheLastAttemptWaitForTheNextTrigger() async throws {
        let server = try await FixtureServer.start { request in .json(Self.pricesAnswer(LocalDay(Self.day(request))!, pvpc: false)) }
        defer { server.stop() }
        let store = try await Self.store()
        let yaml = Self.flow(server, node: "type: redata.prices\nday: tomorrow\nnot_yet_attempts: 1")
        _ = try await Self.run(yaml, store: store, at: "2021-05-31T17:00:00Z")
        #expect(server.requests.count == 2)
        #expect(try await Self.stored(store).map(\.series) == Array(repeating: "ree:600:8741", count: 24), "the spot prices are kept")
        #expect(try await store.deadLetters(tenant: nil, limit: 10).isEmpty, "not yet is not an error")
        _ = try await Self.run(yaml, store: store, at: "2021-05-31T19:00:00Z")
        #expect(server.requests.count == 4, "the day is not recorded as fetched: the next trigger asks again")
    }

    /// Each failure mode: how it is classified, how often it is tried, and that the flow goes on
    /// (the next trigger, for another day, is fetched and stored).
    @Test(arguments: [
        ("401", "auth", 1), ("429 with Retry-After", "rate_limit", 2), ("429", "rate_limit", 2), ("500", "upstream", 2),
        ("HTML page", "upstream", 1), ("timeout", "upstream", 2), ("truncated", "upstream", 2), ("not JSON", "malformed", 1),
        ("errors[] 500", "upstream", 2),
    ])
    func failuresAreClassifiedRetriedAndTheFlowGoesOn(mode: String, kind: String, attempts: Int) async throws {
        let body = Array(Self.pricesAnswer(LocalDay("2021-06-01")!).utf8)
        let server = try await FixtureServer.start { request in
            guard Self.day(request) == "2021-10-31" else { return .init(body: body) }
            switch mode {
            case "401": return .json(#"{"errors": [{"status": "401", "title": "Unauthorized"}]}"#, status: 401)
            case "429 with Retry-After": return .init(status: 429, headers: ["Retry-After": "30"], body: Array("slow down".utf8))
            case "429": return .init(status: 429, body: Array("slow down".utf8))
            case "500": return .json("{}", status: 500)
            case "HTML page": return .init(status: 404, headers: ["Content-Type": "text/html"], body: Array("<!DOCTYPE html><html><body>404</body></html>".utf8))
            case "timeout": return .init(body: body, delay: .seconds(4))
            case "truncated": return .init(body: body, truncateAfter: 100)
            case "not JSON": return .json(#"{"included": [{"id": "1001", "attr"#)
            default: return .json(#"{"errors": [{"status": "500", "title": "Error Interno", "detail": "Fallo"}]}"#, status: 500)
            }
        }
        defer { server.stop() }
        let store = try await Self.store()
        let metrics = HubMetrics()
        let yaml = Self.flow(server, node: "type: redata.prices", payloads: "[{day: 2021-10-31}, {day: 2021-06-01}]")
        let clock = try await Self.run(yaml, store: store, at: "2021-11-02T10:00:00Z", metrics: metrics)

        #expect(server.requests.filter { Self.day($0) == "2021-10-31" }.count == attempts, "\(mode)")
        #expect(PullFlows.requests(metrics, node: "prices", result: kind) == Double(attempts), "\(metrics.text())")
        let dead = try await store.deadLetters(tenant: nil, limit: 10)
        #expect(dead.count == 1 && dead[0].node == "prices" && dead[0].error.contains(kind), "\(dead.map(\.error))")
        #expect(try await Self.stored(store).count == 48, "the next trigger was served")
        // (The virtual clock also moves by the store's flush interval, 1 s.)
        if mode == "429 with Retry-After" { #expect(Self.waited(clock, since: "2021-11-02T10:00:00Z", about: 30), "waited the Retry-After") }
        if mode == "429" || mode == "500" { #expect(clock.now() > Fixtures.utc("2021-11-02T10:00:03Z"), "waited the backoff (5s less jitter)") }
    }

    @Test func anErrorsBodySayingNotAvailableIsNoDataNotAFailure() async throws {
        let server = try await FixtureServer.start { _ in
            .json(#"{"errors":[{"status":"400","title":"Error Interno","detail":"Los datos solicitados no están disponibles en este momento. Inténtelo de nuevo más tarde."}]}"#, status: 400)
        }
        defer { server.stop() }
        let store = try await Self.store()
        let metrics = HubMetrics()
        _ = try await Self.run(Self.flow(server, node: "type: redata.prices\nday: 2021-06-01\ngeo_ids: 8742"), store: store, at: "2021-06-10T10:00:00Z", metrics: metrics)
        #expect(server.requests.first?.query == "start_date=2021-06-01T00:00&end_date=2021-06-01T23:59&time_trunc=hour&geo_ids=8742")
        #expect(PullFlows.requests(metrics, node: "prices", result: "no_data") == 1)
        #expect(try await store.deadLetters(tenant: nil, limit: 10).isEmpty)
        #expect(try await Self.stored(store).isEmpty)
    }

    @Test func anyWidgetIsPulledWithItsGeographyAndQuantity() async throws {
        let fixture = try Fixtures.text("precios-mercados-tiempo-real_2021-06-01_geo_ids-8744_pvpc-only")
        let server = try await FixtureServer.start { _ in .json(fixture) }
        defer { server.stop() }
        let store = try await Self.store()
        let node = "type: redata\ncategory: mercados\nwidget: precios-mercados-tiempo-real\ngeo_limit: ceuta\ngeo_ids: 8744\nlang: en\nday: 2021-06-01"
        _ = try await Self.run(Self.flow(server, node: node), store: store, at: "2021-06-10T10:00:00Z")
        let request = try #require(server.requests.first)
        #expect(request.path == "/en/datos/mercados/precios-mercados-tiempo-real")
        #expect(request.query == "start_date=2021-06-01T00:00&end_date=2021-06-01T23:59&time_trunc=hour&geo_trunc=electric_system&geo_limit=ceuta&geo_ids=8744")
        let readings = try await Self.stored(store)
        #expect(readings.count == 24 && readings.allSatisfy { $0.series == "ree:1001:8744" && $0.quantity == "price" })
    }

    @Test func dailyValuesAreRecordedPerDaySoAMovingWindowAsksOnlyForNewDays() async throws {
        let server = try await FixtureServer.start { request in
            let end = String((request.parameter("end_date") ?? "").prefix(10))
            var day = LocalDay(Self.day(request))!
            var values: [String] = []
            while day <= LocalDay(end)! {
                values.append(#"{"value": \#(580_000 + day.day), "percentage": 1, "datetime": "\#(ISO8601.string(day.start()))"}"#)
                day = day.adding(days: 1)
            }
            return .json(#"{"data": {"id": "dem"}, "included": [{"id": "1293", "attributes": {"title": "Demanda", "magnitude": null, "values": [\#(values.joined(separator: ","))]}}]}"#)
        }
        defer { server.stop() }
        let store = try await Self.store()
        let node = "type: redata\ncategory: demanda\nwidget: evolucion\ntime_trunc: day\nfrom: 2021-06-01\nuntil: "
        _ = try await Self.run(Self.flow(server, node: node + "2021-06-03"), store: store, at: "2021-06-10T10:00:00Z")
        #expect(server.requests.map { $0.query ?? "" } == ["start_date=2021-06-01T00:00&end_date=2021-06-03T23:59&time_trunc=day"])
        let readings = try await Self.stored(store)
        #expect(readings.count == 3 && readings.allSatisfy { $0.quantity == "demand" && $0.unit == "MWh" && $0.resolution == "P1D" && $0.series == "ree:1293" })
        #expect(readings.contains { $0.ts == Fixtures.utc("2021-05-31T22:00:00Z") && $0.value == 580_001 })

        // The window grew by a day: only the new day is asked for.
        _ = try await Self.run(Self.flow(server, node: node + "2021-06-04"), store: store, at: "2021-06-10T11:00:00Z")
        #expect(server.requests.last?.query == "start_date=2021-06-04T00:00&end_date=2021-06-04T23:59&time_trunc=day")
        let count = try await Self.stored(store).count
        #expect(server.requests.count == 2 && count == 4)
    }

    @Test func theArchiveSourceReadsThePublicPVPCFile() async throws {
        let fixture = try Fixtures.text("archive_70_pvpc_download_json_2022-03-27_dst-spring_23h")
        let server = try await FixtureServer.start { _ in .json(fixture) }
        defer { server.stop() }
        let store = try await Self.store()
        let node = "type: redata.prices\nsource: archive\narchive_url: \(server.baseURL)\nday: 2022-03-27"
        _ = try await Self.run(Self.flow(server, node: node), store: store, at: "2022-04-01T10:00:00Z")
        #expect(server.requests.first?.path == "/archives/70/download_json")
        #expect(server.requests.first?.query == "locale=es&date=2022-03-27")
        #expect(try await Self.stored(store).count == 46)
    }

    @Test func esiosSendsTheTokenAndAveragesWhenTruncating() async throws {
        let fixture = try Fixtures.text("indicator_1001_pvpc_2021-10-31_dst-autumn_5geos")
        let server = try await FixtureServer.start { request in
            request.headers["x-api-key"] == "s3cret" ? .json(fixture) : .json(#"{"message": "Forbidden"}"#, status: 403)
        }
        defer { server.stop() }
        let store = try await Self.store()
        let node = "type: esios\ntoken: s3cret\nindicators: [1001]\ngeo_ids: [8741, 8742]\ntime_trunc: hour\nday: 2021-10-31"
        _ = try await Self.run(Self.flow(server, node: node), store: store, at: "2021-11-02T10:00:00Z")
        let request = try #require(server.requests.first)
        #expect(request.path == "/indicators/1001")
        #expect(request.query == "start_date=2021-10-31T00:00&end_date=2021-10-31T23:59&locale=es&time_trunc=hour&time_agg=average&geo_ids%5B%5D=8741&geo_ids%5B%5D=8742")
        let readings = try await Self.stored(store)
        #expect(readings.count == 125, "the server answered all five geographies; each kept apart")
        #expect(Set(readings.map(\.series)).count == 5)

        // A wrong token: 403 is an auth failure, asked once, the trigger dead-lettered without the token in it.
        let other = try await Self.store()
        _ = try await Self.run(Self.flow(server, node: node.replacingOccurrences(of: "s3cret", with: "wrong")), store: other, at: "2021-11-02T10:00:00Z")
        #expect(server.requests.count == 2)
        let dead = try await other.deadLetters(tenant: nil, limit: 10)
        #expect(dead.count == 1 && dead[0].error.contains("auth") && !dead[0].error.contains("wrong"))
    }

    @Test func esiosWithoutATokenRefusesToStartClearly() async throws {
        let yaml = "flow: p\nnodes:\n  - id: tick\n    type: test.trigger\n    to: [esios]\n  - id: esios\n    type: esios\n    indicators: [1001]\n"
        await #expect(throws: PullFlows.Failure.self) {
            try await PullFlows.run(yaml, specs: REDataModule.specs, store: try await Self.store(), clock: VirtualClock(start: Date()))
        }
    }
}

@Suite struct REDataSpecTests {
    @Test func everyExampleLoads() {
        #expect(PullFlows.exampleProblems(REDataModule.specs, environment: ["ESIOS_TOKEN": "t"]) == [])
    }

    @Test func aWindowThatIsNotADayIsReportedWithItsPosition() {
        let flow = """
            flow: f
            nodes:
              - id: trigger
                type: test.trigger
                to: [prices]
              - id: prices
                type: redata.prices
                day: mañana
            """
        let registry = NodeRegistry(CoreNodes.specs + [PullFlows.triggerSpec] + REDataModule.specs)
        let problems = FlowLoader(registry: registry, environment: [:]).load(text: flow, file: "f.yaml").1.map(\.description)
        #expect(problems.count == 1 && problems[0].hasPrefix("f.yaml:8:") && problems[0].contains("'mañana' is not a day"), "\(problems)")
    }
}
