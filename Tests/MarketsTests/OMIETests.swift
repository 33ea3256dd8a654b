import EnchufeCore
import Foundation
import HTTPPull
@testable import Markets
import TestSupport
import Testing

/// OMIE's day-ahead price files, read from files made in OMIE's layout (no real file is at hand:
/// the layout is the one OMIE's file model gives, as `docs/markets.md` cites), and `omie.prices`
/// against a local server answering as www.omie.es does.
@Suite struct OMIETests {
    /// A file in OMIE's layout for `day` with `count` periods: Portugal's price `100 + p`, Spain's
    /// `200 + p / 100`, so a swapped column or a shifted period shows.
    static func file(_ day: LocalDay, periods count: Int, lineEnd: String = "\r\n") -> String {
        var lines = ["MARGINALPDBC;"]
        for p in 1...count {
            lines.append(String(format: "%04d;%02d;%02d;%d;%.2f;%.2f;", day.year, day.month, day.day, p, 100 + Double(p), 200 + Double(p) / 100))
        }
        lines.append("*")
        return lines.joined(separator: lineEnd) + lineEnd
    }

    static func day(_ text: String) -> LocalDay { LocalDay(text)! }

    static func utc(_ text: String) -> Date { ISO8601.date(text)! }

    static func series(_ readings: [Reading], _ zone: String) -> [Reading] {
        readings.filter { $0.series == "omie:\(zone)" }.sorted { $0.ts < $1.ts }
    }

    @Test(arguments: [
        // (day, periods, resolution, first interval, last interval)
        ("2024-06-01", 24, "PT1H", "2024-05-31T22:00:00Z", "2024-06-01T21:00:00Z"),
        ("2024-03-31", 23, "PT1H", "2024-03-30T23:00:00Z", "2024-03-31T21:00:00Z"),
        ("2024-10-27", 25, "PT1H", "2024-10-26T22:00:00Z", "2024-10-27T22:00:00Z"),
        ("2025-10-01", 96, "PT15M", "2025-09-30T22:00:00Z", "2025-10-01T21:45:00Z"),
        ("2025-10-26", 100, "PT15M", "2025-10-25T22:00:00Z", "2025-10-26T22:45:00Z"),
        ("2026-03-29", 92, "PT15M", "2026-03-28T23:00:00Z", "2026-03-29T21:45:00Z"),
    ])
    func periodsArePlacedByPositionFromMidnightInMadridWithTheResolutionTheirCountGives(
        day: String, periods: Int, resolution: String, first: String, last: String
    ) throws {
        let readings = try OMIEFile.readings(Self.file(Self.day(day), periods: periods), day: Self.day(day))
        let es = Self.series(readings, "ES"), pt = Self.series(readings, "PT")
        #expect(es.count == periods && pt.count == periods)
        #expect(es.first?.ts == Self.utc(first) && es.last?.ts == Self.utc(last))
        #expect(readings.allSatisfy { $0.resolution == resolution && $0.quantity == "price" && $0.unit == "EUR/MWh" })
        // Column 5 is Portugal, column 6 Spain: never swapped.
        #expect(pt.map(\.value) == (1...periods).map { 100 + Double($0) })
        #expect(es.map(\.value) == (1...periods).map { 200 + Double($0) / 100 })
        // Consecutive in real time: the repeated autumn hour is two intervals, the spring gap none.
        let step = resolution == "PT1H" ? 3600.0 : 900.0
        #expect(zip(es, es.dropFirst()).allSatisfy { $1.ts.timeIntervalSince($0.ts) == step })
    }

    @Test(arguments: [
        ("2024-10-27", 24, "24 periods for 2024-10-27, which has 25 hours (100 quarter-hours)"),
        ("2025-10-01", 95, "95 periods for 2025-10-01, which has 24 hours (96 quarter-hours)"),
    ])
    func aPeriodCountThatDoesNotFitTheDayIsRefused(day: String, periods: Int, message: String) {
        #expect(throws: PullError.self) { try OMIEFile.readings(Self.file(Self.day(day), periods: periods), day: Self.day(day)) }
        do {
            _ = try OMIEFile.readings(Self.file(Self.day(day), periods: periods), day: Self.day(day))
        } catch let error as PullError {
            #expect(error.kind == .malformed)
            #expect(error.message == message)
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test(arguments: [
        // (what is replaced, by what, what the error says)
        ("MARGINALPDBC;", "MARGINALPIBC;", "not an OMIE day-ahead price file"),
        ("*\r\n", "", "without its closing '*'"),
        ("2024;06;01;3;", "2024;06;02;3;", "line 4 is for 2024-06-02, the file for 2024-06-01"),
        ("2024;06;01;3;", "2024;06;01;4;", "line 4 has period 4 where period 3 comes next"),
        ("103.00;", "n/a;", "line 4 has a price that is not a number"),
        ("2024;06;01;5;105.00;200.05;", "2024;06;01;5", "line 6 is not YYYY;MM;DD;PERIOD;PRICE_PT;PRICE_ES;"),
    ])
    func aDamagedFileIsRefusedWholeSayingWhere(replacing: String, with replacement: String, message: String) {
        let day = Self.day("2024-06-01")
        let damaged = Self.file(day, periods: 24).replacingOccurrences(of: replacing, with: replacement)
        do {
            let readings = try OMIEFile.readings(damaged, day: day)
            Issue.record("read \(readings.count) readings from a damaged file")
        } catch let error as PullError {
            #expect(error.kind == .malformed)
            #expect(error.message.contains(message), "\(error.message)")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func aDecimalCommaAndUnixLineEndsAreReadToo() throws {
        let day = Self.day("2024-06-01")
        let text = Self.file(day, periods: 24, lineEnd: "\n").replacingOccurrences(of: "101.00;", with: "101,25;")
        let pt = Self.series(try OMIEFile.readings(text, day: day), "PT")
        #expect(pt.first?.value == 101.25)
    }

    // MARK: - omie.prices in a flow

    static func flow(_ server: FixtureServer, days: String) -> String {
        """
        flow: market
        nodes:
          - id: tick
            type: test.trigger
            to: [omie]
          - id: omie
            type: omie.prices
            \(days)
            base_url: \(server.baseURL)
            requests_per_minute: 60000
            request_attempts: 2
            request_backoff: 1s
            to: [store]
          - id: store
            type: store.readings
        """
    }

    static func run(_ yaml: String, store: any Store, at now: String) async throws {
        try await PullFlows.run(yaml, specs: MarketsModule.specs, store: store, clock: VirtualClock(start: utc(now)))
    }

    /// The file name a request asks for (`filename=` of its query).
    static func fileName(_ request: FixtureServer.Request) -> String {
        URLComponents(string: "http://x/?\(request.query ?? "")")?.queryItems?.first { $0.name == "filename" }?.value ?? ""
    }

    @Test func publishedDaysAreStoredAndNotAskedAgainWhileADayNotPublishedYetIsNeitherStoredNorDeadLettered() async throws {
        let server = try await FixtureServer.start { request in
            switch Self.fileName(request) {
            case "marginalpdbc_20241027.1":
                // Latin-1, as OMIE sends it.
                FixtureServer.Answer(headers: ["Content-Type": "text/plain; charset=iso-8859-1"], body: Array(Self.file(Self.day("2024-10-27"), periods: 25).utf8))
            case "marginalpdbc_20241028.1":
                FixtureServer.Answer(headers: ["Content-Type": "text/plain"], body: Array(Self.file(Self.day("2024-10-28"), periods: 24).utf8))
            default:
                // What OMIE answers for a file it does not have (yet): a page, not a 404.
                FixtureServer.Answer(headers: ["Content-Type": "text/html; charset=utf-8"], body: Array("<!DOCTYPE html><html><body>No encontrado</body></html>".utf8))
            }
        }
        defer { server.stop() }
        let store = try await PullFlows.memoryStore()
        let yaml = Self.flow(server, days: "from: 2024-10-27\n    until: 2024-10-29")
        try await Self.run(yaml, store: store, at: "2024-10-29T10:00:00Z")

        #expect(server.requests.map(Self.fileName) == ["marginalpdbc_20241027.1", "marginalpdbc_20241028.1", "marginalpdbc_20241029.1"])
        #expect(server.requests.allSatisfy { $0.path == "/es/file-download" && $0.query?.hasPrefix("parents=marginalpdbc&") == true })
        let readings = try await store.changes(tenant: "default", after: 0, limit: 1000).map(\.reading)
        #expect(Self.series(readings, "ES").count == 49 && Self.series(readings, "PT").count == 49)
        #expect(readings.allSatisfy { $0.source == "market/omie" })
        #expect(try await store.deadLetters(tenant: nil, limit: 10).isEmpty)

        // Again: only the day not published is asked for.
        try await Self.run(yaml, store: store, at: "2024-10-29T14:00:00Z")
        #expect(server.requests.map(Self.fileName).dropFirst(3) == ["marginalpdbc_20241029.1"])
    }

    @Test func a404IsNotPublishedYetAndAServerFailureIsRetriedThenLeftForTheNextTrigger() async throws {
        let server = try await FixtureServer.start { request in
            Self.fileName(request) == "marginalpdbc_20240601.1"
                ? FixtureServer.Answer(status: 404, headers: ["Content-Type": "text/plain"], body: Array("not found".utf8))
                : FixtureServer.Answer(status: 503, headers: ["Content-Type": "text/plain"], body: Array("busy".utf8))
        }
        defer { server.stop() }
        let store = try await PullFlows.memoryStore()
        try await Self.run(Self.flow(server, days: "from: 2024-06-01\n    until: 2024-06-02"), store: store, at: "2024-06-03T10:00:00Z")
        // The 404 day is skipped quietly; the 503 is asked twice (request_attempts) and ends the pull.
        #expect(server.requests.map(Self.fileName) == ["marginalpdbc_20240601.1", "marginalpdbc_20240602.1", "marginalpdbc_20240602.1"])
        #expect(try await store.changes(tenant: "default", after: 0, limit: 10).isEmpty)
        let dead = try await store.deadLetters(tenant: nil, limit: 10)
        #expect(dead.count == 1 && dead[0].error.contains("pull of omie.prices/2024-06-02 failed"), "\(dead.map(\.error))")
    }
}
