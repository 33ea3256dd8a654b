import EnchufeCore
import Foundation
import GRDB
import TestSupport

/// The community dashboard of a `members`-member community over October 2026 (31 local days, one
/// of 25 hours), quarter-hourly readings in an SQLite store:
/// - the route `GET /api/v1/communities/{id}/dashboard?range=month` against its peer, the query a
///   hand-written dashboard would run on the same database (one `GROUP BY` giving each member's
///   hourly sums, through GRDB), medians of `runs`;
/// - the page in headless Chromium (`--dump-dom` once the page has drawn), against the same
///   Chromium opening `about:blank`: the difference is what the page costs (its requests and its
///   drawing), start-up excluded.
func dashboardBenchmark(runs: Int, members: Int = 100) async throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("enchufe-bench-dashboard-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let path = folder.appendingPathComponent("enchufe.sqlite").path
    let store = try SQLiteStore(path: path)
    try await store.migrate()

    let zone = TimeZone(identifier: "Europe/Madrid")!
    let from = LocalDay(year: 2026, month: 10, day: 1).start(in: zone), to = LocalDay(year: 2026, month: 11, day: 1).start(in: zone)
    let quarters = Int(to.timeIntervalSince(from) / 900)
    let cups = (0..<members).map { CUPS.make(distributor: "0021", number: UInt64(7_000 + $0)) }
    for c in cups { try await store.saveSupply(SupplyPoint(tenant: "bench", cups: c, tariff: "2.0TD", zone: "peninsula", community: "roof")) }
    var written = 0
    let began = ContinuousClock.now
    for (m, c) in cups.enumerated() {
        var batch: [Reading] = []
        for k in 0..<quarters {
            let ts = from.addingTimeInterval(Double(k) * 900)
            let hour = Double((k / 4) % 24)
            let sun = max(0, sin((hour - 6) / 14 * Double.pi))
            let generation = m % 5 < 3 ? sun * 0.9 : 0
            let use = 0.15 + 0.1 * Double((k + m) % 7) / 7 + (hour >= 19 && hour < 23 ? 0.3 : 0)
            let consumption = max(0, use - generation), surplus = max(0, generation - use)
            func reading(_ quantity: String, _ value: Double) -> Reading {
                Reading(tenant: "bench", series: c, quantity: quantity, ts: ts, resolution: "PT15M", value: value, unit: "kWh")
            }
            batch += [reading("consumption", consumption), reading("generation", generation), reading("surplus", surplus)]
            if surplus > 0 { batch.append(reading("market_sold", surplus * 0.6)) }
            if consumption > 0, sun > 0 { batch.append(reading("market_bought", min(consumption, 0.1))) }
        }
        _ = try await store.upsert(batch)
        written += batch.count
    }
    var forecasts: [Forecast] = []
    var prices: [Reading] = []
    for h in 0..<(quarters / 4 + 24) {
        let ts = from.addingTimeInterval(Double(h) * 3600)
        let issued = LocalDay(containing: ts, in: zone).start(in: zone).addingTimeInterval(-10 * 3600)
        for quantity in ["consumption", "generation"] {
            forecasts.append(Forecast(
                Reading(tenant: "bench", series: "community:roof", quantity: quantity, ts: ts, resolution: "PT1H", value: Double(members) * 0.3, unit: "kWh", quality: .forecast),
                issuedAt: issued, model: "bench"))
        }
        prices.append(Reading(tenant: "bench", series: "ree:1001:8741", quantity: "price", ts: ts, resolution: "PT1H", value: 80 + 40 * sin(Double(h) / 4), unit: "EUR/MWh"))
    }
    try await store.saveForecasts(forecasts)
    _ = try await store.upsert(prices)
    print("store: \(members) members, \(quarters) quarter-hours each, \(written) readings written in \(seconds(ContinuousClock.now - began)) s")

    let server = try await APIServer.start(store: store)
    defer { server.stop() }
    let route = "/api/v1/communities/roof/dashboard?date=2026-10-01&range=month"
    let first = try await server.get(route, key: nil)
    guard first.status == 200 else {
        print("dashboard answered \(first.status): \(first.body.prefix(500))")
        exit(1)
    }
    let answer = try JSONValue.parse(first.body)
    let days = answer["energy"]?["measured"]?["consumption"]?.arrayValue?.count ?? 0
    precondition(days == 31 && (answer["members_detail"]?.arrayValue?.count ?? 0) == members, "a month of 31 days and \(members) members")

    var ours: [Double] = []
    for _ in 0..<runs {
        let t = ContinuousClock.now
        let a = try await server.get(route, key: nil)
        ours.append(seconds(ContinuousClock.now - t))
        precondition(a.status == 200)
    }
    // The peer: each member's hourly sums of the same quantities in one query, as a dashboard
    // written straight against the database would ask for them.
    let database = try DatabaseQueue(path: path)
    let placeholders = cups.map { _ in "?" }.joined(separator: ",")
    let sql = """
        SELECT series, quantity, (ts / 3600000) * 3600000, SUM(value) FROM readings
        WHERE tenant = ? AND series IN (\(placeholders)) AND quantity IN ('consumption','generation','surplus','market_bought','market_sold','market_value','market_savings')
          AND ts >= ? AND ts < ? GROUP BY 1, 2, 3
        """
    var arguments: StatementArguments = ["bench"]
    for c in cups { _ = arguments.append(contentsOf: [c]) }
    _ = arguments.append(contentsOf: [Int64(from.timeIntervalSince1970 * 1000), Int64(to.timeIntervalSince1970 * 1000)])
    let finalArguments = arguments
    var peers: [Double] = []
    var rows = 0
    for _ in 0..<runs {
        let t = ContinuousClock.now
        rows = try await database.read { db in try Row.fetchAll(db, sql: sql, arguments: finalArguments).count }
        peers.append(seconds(ContinuousClock.now - t))
    }
    let (a, b) = (median(ours), median(peers))
    print(String(format: "route (a month, %d members, HTTP and JSON included): %.0f ms; peer (one GROUP BY of the same readings, %d rows): %.0f ms; ratio %.2f", members, a * 1000, rows, b * 1000, b / a))

    // The page in Chromium, against Chromium on a blank page.
    guard let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
        print("no chromium: the page's render time is not measured (apt-get install chromium)")
        return
    }
    func open(_ url: String) throws -> (seconds: Double, dom: String) {
        let profile = folder.appendingPathComponent("profile-\(UUID().uuidString)")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: chromium)
        process.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=\(profile.path)", "--window-size=1400,900",
            "--virtual-time-budget=5000", "--dump-dom", url]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        let t = ContinuousClock.now
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (seconds(ContinuousClock.now - t), String(decoding: data, as: UTF8.self))
    }
    let page = "http://127.0.0.1:\(server.port)/ui/communities/roof?date=2026-10-01&range=month"
    var pages: [Double] = [], blanks: [Double] = []
    for _ in 0..<max(3, runs / 2) {
        let drawn = try open(page)
        precondition(drawn.dom.contains("data-panel=\"ratios\"") && drawn.dom.contains("data-table=\"market members\""), "the page did not draw: \(drawn.dom.prefix(500))")
        pages.append(drawn.seconds)
        blanks.append(try open("about:blank").seconds)
    }
    let (p, q) = (median(pages), median(blanks))
    print(String(format: "page in headless Chromium: %.0f ms; about:blank: %.0f ms; the page's own cost (requests and drawing): %.0f ms", p * 1000, q * 1000, (p - q) * 1000))
}

private func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}

private func median(_ values: [Double]) -> Double {
    values.sorted()[values.count / 2]
}
