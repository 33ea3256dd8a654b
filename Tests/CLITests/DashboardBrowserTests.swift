import EnchufeCore
import Foundation
import TestSupport
import Testing
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The community dashboard (`/ui/communities`, `/ui/communities/{id}`) in headless Chromium against
/// `enchufe run` on the demo community-market flow, simulated over the 25-hour day 2021-10-31, with
/// that day's recorded REData prices served by a local server.
extension CLITests {
    /// The demo flow, simulating 2021-10-30 to 2021-11-01 as fast as it is taken.
    static func dashboardDemoFlow() throws -> String {
        let demo = try String(contentsOf: repository.appendingPathComponent("pipelines/community-market.yaml"), encoding: .utf8)
        let simulated = demo.replacingOccurrences(of: "    every: 1s\n", with: "    every: 0s\n    start: 2021-10-30T00:00:00+02:00\n    count: 288\n")
        guard simulated != demo else { throw Failure(description: "pipelines/community-market.yaml no longer has `every: 1s` for its simulator") }
        return simulated
    }

    /// The text of the cells of `column` in the table `name` of a dumped page, top to bottom.
    static func column(_ dom: String, table name: String, _ column: String) -> [String] {
        guard let start = dom.range(of: "data-table=\"\(name)\""), let end = dom[start.upperBound...].range(of: "</table>") else { return [] }
        var cells: [String] = []
        var rest = dom[start.upperBound..<end.lowerBound]
        while let cell = rest.range(of: "data-col=\"\(column)\">") {
            let text = rest[cell.upperBound...].prefix { $0 != "<" }
            cells.append(String(text))
            rest = rest[cell.upperBound...]
        }
        return cells
    }

    /// How many points the chart draws for a series.
    static func points(_ dom: String, series: String) -> Int {
        guard let start = dom.range(of: "data-series=\"\(series)\""), let end = dom[start.upperBound...].range(of: "</g>") else { return 0 }
        return dom[start.upperBound..<end.lowerBound].components(separatedBy: "class=\"point\"").count - 1
    }

    static func shown(_ value: JSONValue?) -> String {
        value?.doubleValue.map { String(format: "%.3f", $0) } ?? ""
    }

    /// Whether the cells show these values to three decimals. The browser rounds a near-tie
    /// (5.8015 stored as 5.80149…) its own way, so the test allows half a unit in the last place.
    static func showsTheSame(_ cells: [String], _ values: [JSONValue?]) -> Bool {
        cells.count == values.count && zip(cells, values).allSatisfy { cell, value in
            guard let number = Double(cell), let expected = value?.doubleValue else { return cell == Self.shown(value) }
            return abs(number - expected) <= 0.0005 + 1e-9
        }
    }

    @Test func theDashboardDrawsTheTwentyFiveHourDayWithTheAPIsNumbersAndShowsAnotherTenantNothing() async throws {
        let prices = try String(contentsOf: Self.repository.appendingPathComponent("pipelines/fixtures/redata-prices-2021-10-31.json"), encoding: .utf8)
        let server = try await FixtureServer.start { request in
            request.startDay == "2021-10-31" ? .json(prices) : .json("not found", status: 404)
        }
        defer { server.stop() }
        let dir = try projectDirectory(flow: try Self.dashboardDemoFlow(), named: "community-market")
        try """
            flow: prices
            tenant: demo
            nodes:
              - { id: start, type: schedule, every: 1d, to: [prices] }
              - { id: prices, type: redata.prices, base_url: "\(server.baseURL)", from: 2021-10-31, until: 2021-10-31, to: [store] }
              - { id: store, type: store.readings, flush_interval: 50ms }
            """.write(to: dir.appendingPathComponent("pipelines/prices.yaml"), atomically: true, encoding: .utf8)
        func key(_ tenant: String, _ scope: String) throws -> String {
            let created = try run(["keys", "create", "--tenant", tenant, "--scope", scope], in: dir)
            return try #require(created.output.split(separator: "\n").first { $0.hasPrefix("enk_") }.map(String.init), "\(created.output)")
        }
        let member = try key("demo", "totals"), stranger = try key("elsewhere", "read")
        let db = dir.appendingPathComponent("var/enchufe.sqlite").path
        let hub = try RunningHub(["run", "--http", "127.0.0.1:0"], in: dir)
        defer { hub.terminate() }

        // Everything simulated is stored (8 households × 288 quarter-hours) and the prices are in.
        let deadline = ContinuousClock.now + .seconds(120)  // a bound for failure, not a pace
        func stored() throws -> (String, String) {
            (try sqlite(db, "SELECT count(*) FROM readings WHERE quantity = 'consumption' AND series LIKE 'ES%'"),
                try sqlite(db, "SELECT count(*) FROM readings WHERE quantity = 'price'"))
        }
        while try stored().0 != "2304" || stored().1 == "0", ContinuousClock.now < deadline {
            _ = try await hub.poll("/api/v1/communities") { _ in true }
        }
        #expect(try stored().0 == "2304")
        let answer = try await hub.poll("/api/v1/communities/solar-market/dashboard?date=2021-10-31") { $0.status == 200 }
        let api = try JSONValue.parse(answer.body)
        let measured = (api["energy"]?["measured"]?["consumption"]?.arrayValue ?? [])
        #expect(measured.count == 25 && measured.allSatisfy { $0.doubleValue != nil }, "\(answer.body.prefix(500))")

        let output = CLITests.binary.deletingLastPathComponent().appendingPathComponent("test-output")
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        func screenshot(_ path: String, _ name: String) throws {
            let shot = output.appendingPathComponent(name)
            try? FileManager.default.removeItem(at: shot)
            _ = try chromium(hub.base + path, ["--screenshot=\(shot.path)"])
            let png = try Data(contentsOf: shot)
            #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]) && png.count > 10_000, "no screenshot at \(shot.path)")
            print("dashboard screenshot: \(shot.path)")
        }

        // The index lists the community, and every panel of its page is drawn.
        let index = try chromium(hub.base + "/ui/communities", ["--dump-dom"])
        #expect(index.contains("data-community=\"solar-market\""), "\(index.prefix(2000))")
        try screenshot("/ui/communities", "dashboard-index.png")
        let page = "/ui/communities/solar-market?date=2021-10-31"
        let dom = try chromium(hub.base + page, ["--dump-dom"])
        for panel in ["energy", "prices", "sale", "ratios"] {
            #expect(dom.contains("data-panel=\"\(panel)\""), "panel \(panel) is not drawn: \(dom.prefix(3000))")
        }
        #expect(!dom.contains("data-panel=\"error\""))
        try screenshot(page, "dashboard-community.png")

        // 25 hourly points, two at 02:00, with the API's numbers in the table beside the chart.
        #expect(Self.points(dom, series: "consumption (measured)") == 25)
        let labels = (api["intervals"]?.arrayValue ?? []).compactMap { $0["label"]?.stringValue }
        #expect(labels.filter { $0.contains(" 02:00 ") }.count == 2)
        #expect(Self.showsTheSame(Self.column(dom, table: "energy", "consumption"), measured), "\(Self.column(dom, table: "energy", "consumption")) against \(measured)")
        let generation = api["energy"]?["measured"]?["generation"]?.arrayValue ?? []
        #expect(generation.count == 25 && Self.showsTheSame(Self.column(dom, table: "energy", "generation"), generation))
        let pvpc = api["prices"]?.arrayValue?.first?["rows"]?.arrayValue?.first { $0["name"]?.stringValue == "PVPC" }
        let pvpcValues = (pvpc?["points"]?.arrayValue ?? []).map { $0["value"] }
        #expect(pvpcValues.count == 25)
        #expect(Self.showsTheSame(Self.column(dom, table: "prices 2021-10-31", "PVPC"), pvpcValues))
        let cheapest = (pvpc?["points"]?.arrayValue ?? []).filter { $0["cheapest"]?.boolValue == true }.count
        #expect(cheapest == 3 && dom.components(separatedBy: "data-mark=\"cheapest\"").count - 1 >= 1)
        let ratio = api["ratios"]?["community"]?["self_sufficiency"]?.doubleValue ?? -1
        #expect(dom.contains("data-figure=\"self_sufficiency\">\(String(format: "%.1f", ratio * 100)) %<"))
        // The operator on this machine sees each member's market figures.
        #expect(dom.contains("data-table=\"market members\"") && dom.components(separatedBy: "data-cups=\"ES").count - 1 == 2 * 8)

        // A member's key (totals) sees the community's numbers but no member; another tenant's, nothing.
        let memberDom = try chromium(hub.base + page + "#key=\(member)", ["--dump-dom"])
        #expect(memberDom.contains("data-panel=\"energy\"") && !memberDom.contains("data-table=\"market members\""))
        #expect(Self.showsTheSame(Self.column(memberDom, table: "energy", "consumption"), measured))
        #expect(!memberDom.contains(member), "the key stays out of the page")
        let strangerDom = try chromium(hub.base + page + "#key=\(stranger)", ["--dump-dom"])
        #expect(strangerDom.contains("data-panel=\"error\""))
        #expect(strangerDom.contains("no supplies in community 'solar-market'"), "\(strangerDom.prefix(3000))")
        for leak in ["data-panel=\"energy\"", "data-table=", "class=\"point\"", "ES00"] { #expect(!strangerDom.contains(leak), "\(leak) shown to another tenant") }
        try screenshot(page + "#key=\(stranger)", "dashboard-other-tenant.png")
    }
}
