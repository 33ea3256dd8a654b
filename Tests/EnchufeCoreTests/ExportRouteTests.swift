import EnchufeCore
import Foundation
import Testing
import TestSupport

@Suite struct ExportRouteTests {
    static let flow = """
        flow: billing
        tenant: a
        nodes:
          - { id: table, type: export, name: month-csv, format: csv, quantity: consumption, resolution: PT1H }
          - { id: curves, type: export, name: month-f5d, format: f5d }
          - { id: datadis, type: export, name: month-datadis, format: datadis-csv, series: [ES0031000000000003BS0F] }
          - { id: betas, type: export, name: betas, format: coefficients, cau: ES0031000000000001BJ0FA000 }
        """
    static let other = """
        flow: theirs
        tenant: b
        nodes:
          - { id: table, type: export, name: b-csv, format: ndjson }
        """
    static let supplies = ["ES0031000000000001BJ0F", "ES0031000000000002BZ0F"]

    /// Tenant a: two supplies' quarter-hour consumption and hourly consumption and surplus over the
    /// autumn DST day (25 hours) and the day after, static coefficients; tenant b: one reading.
    func serve() async throws -> (APIServer, key: String, other: String, store: SQLiteStore, readings: [Reading], dir: URL) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("enchufe-exports-\(UUID().uuidString)")
        let store = try SQLiteStore(path: dir.appendingPathComponent("hub.sqlite").path)
        try await store.migrate()
        let t0 = ISO8601.date("2026-10-24T22:00:00Z")!  // midnight of 25 October in Madrid (CEST)
        var readings: [Reading] = []
        for (s, cups) in Self.supplies.enumerated() {
            for h in 0..<49 {
                let ts = t0.addingTimeInterval(Double(h) * 3600)
                for q in 0..<4 {
                    readings.append(Reading(tenant: "a", series: cups, quantity: "consumption", ts: ts.addingTimeInterval(Double(q) * 900), resolution: "PT15M", value: Double((h + q + s) % 5) / 40, unit: "kWh"))
                }
            }
        }
        _ = try await store.upsert(readings)
        // Hourly curves (what the curve formats take) of two other supplies.
        var hourly: [Reading] = []
        for cups in ["ES0031000000000003BS0F", "ES0031000000000004BQ0F"] {
            for h in 0..<49 {
                let ts = t0.addingTimeInterval(Double(h) * 3600)
                let quality: Quality = h == 3 ? .estimated : .measured
                hourly.append(Reading(tenant: "a", series: cups, quantity: "consumption", ts: ts, resolution: "PT1H", value: Double(h % 9) * 0.125, unit: "kWh", quality: quality))
                hourly.append(Reading(tenant: "a", series: cups, quantity: "surplus", ts: ts, resolution: "PT1H", value: Double(h % 4) * 0.25, unit: "kWh", quality: quality))
            }
        }
        _ = try await store.upsert(hourly)
        let betas = [("ES0031000000000001BJ", 0.333334), ("ES0031000000000002BZ0F", 0.666666)].map {
            Reading(tenant: "a", series: $0.0, quantity: "coefficient", ts: ISO8601.date("2026-12-31T23:00:00Z")!, resolution: "P1Y", value: $0.1, unit: "1", quality: .computed)
        }
        _ = try await store.upsert(betas + [Reading(tenant: "b", series: "ES0031000000000009ZZ0F", quantity: "consumption", ts: t0, resolution: "PT1H", value: 9, unit: "kWh")])
        let (_, key) = try await APIKeys.create(tenant: "a", scopes: ["read"], name: "billing", at: Date(), store: store)
        let (_, other) = try await APIKeys.create(tenant: "b", scopes: ["read"], name: "b", at: Date(), store: store)
        return (try await APIServer.start(store: store, flowYAML: [Self.flow, Self.other]), key, other, store, readings + hourly, dir)
    }

    @Test func namedExportsServeTheirFormatsToTheirTenantOnly() async throws {
        let (server, key, other, _, readings, dir) = try await serve()
        defer { server.stop(); try? FileManager.default.removeItem(at: dir) }

        // csv, consumption aggregated to hours in the export's zone: 25 hours on 25 October.
        let table = try await server.get("/api/v1/exports/month-csv?from=2026-10-25&to=2026-10-26", key: key)
        #expect(table.status == 200 && table.type.hasPrefix("text/csv"))
        let rows = table.body.split(separator: "\n").dropFirst()
        let quarterHourSupply = rows.filter { $0.hasPrefix("ES0031000000000001BJ0F,consumption,") }
        #expect(quarterHourSupply.count == 25, "\(table.body.prefix(400))")
        let first = quarterHourSupply.first.map { $0.split(separator: ",").map(String.init) } ?? []
        let expected = readings.filter { $0.series == "ES0031000000000001BJ0F" && $0.resolution == "PT15M" && $0.ts < ISO8601.date("2026-10-24T23:00:00Z")! }.map(\.value).reduce(0, +)
        #expect(first.count == 9 && first[3] == "PT1H" && abs((Double(first[4]) ?? -1) - expected) < 1e-9, "\(first)")

        // f5d of every supply's hourly curve (quarter-hours summed into their hours), read back by
        // the curve parser into the same readings.
        let f5d = try await server.get("/api/v1/exports/month-f5d?from=2026-10-25&to=2026-10-27", key: key)
        #expect(f5d.status == 200)
        let back = try CurveFiles.f5d(f5d.body)
        var hourly = readings.filter { $0.resolution == "PT1H" }
        for (key, quarters) in Dictionary(grouping: readings.filter { $0.resolution == "PT15M" }, by: { "\($0.series) \(Int($0.ts.timeIntervalSince1970) / 3600)" }) {
            #expect(quarters.count == 4, "\(key)")
            var hour = quarters[0]
            hour.ts = Date(timeIntervalSince1970: Double(Int(hour.ts.timeIntervalSince1970) / 3600 * 3600))
            hour.resolution = "PT1H"
            hour.value = quarters.map(\.value).reduce(0, +)
            hourly.append(hour)
        }
        #expect(back.count == hourly.count)
        for r in hourly {
            #expect(back.contains { $0.series == r.series && $0.quantity == r.quantity && $0.ts == r.ts && abs($0.value - r.value) < 1e-9 && $0.quality == r.quality }, "\(r)")
        }

        // datadis-csv of one series only.
        let datadis = try await server.get("/api/v1/exports/month-datadis?from=2026-10-25&to=2026-10-26", key: key)
        let lines = datadis.body.split(separator: "\n")
        #expect(lines.first?.hasPrefix("cups;fecha;hora") == true)
        #expect(lines.count == 1 + 25 && lines.dropFirst().allSatisfy { $0.hasPrefix("\"ES0031000000000003BS0F\";\"2026/10/25\"") }, "\(datadis.body.prefix(300))")

        // The coefficient file, named for the CAU; the 20-character CUPS gets its border point.
        let betas = try await server.get("/api/v1/exports/betas", key: key)
        #expect(betas.status == 200)
        #expect(betas.body == "ES0031000000000001BJ0F;0,333334\nES0031000000000002BZ0F;0,666666\n")
        #expect(betas.headers["content-disposition"] == "attachment; filename=\"ES0031000000000001BJ0FA000_2027.txt\"")

        // Another tenant's export is not there for this key, nor this one's for theirs.
        #expect(try await server.get("/api/v1/exports/b-csv", key: key).status == 404)
        #expect(try await server.get("/api/v1/exports/betas", key: other).status == 404)
        let theirs = try await server.get("/api/v1/exports/b-csv", key: other)
        #expect(theirs.status == 200 && theirs.body.split(separator: "\n").count == 1 && theirs.body.contains("ES0031000000000009ZZ0F"))
        // Unknown names, bad ranges, no key.
        #expect(try await server.get("/api/v1/exports/nothing", key: key).status == 404)
        let bad = try await server.get("/api/v1/exports/month-csv?from=2026-10-26&to=2026-10-25", key: key)
        #expect(bad.status == 400 && bad.body.contains("to must be after from"))
        #expect(try await server.get("/api/v1/exports/month-csv", key: nil).status == 401)
    }

    @Test func coefficientsThatDoNotSumToOneAreRefusedWithTheReason() async throws {
        let (server, key, _, store, _, dir) = try await serve()
        defer { server.stop(); try? FileManager.default.removeItem(at: dir) }
        _ = try await store.upsert([
            Reading(tenant: "a", series: "ES0031000000000002BZ0F", quantity: "coefficient", ts: ISO8601.date("2026-12-31T23:00:00Z")!, resolution: "P1Y", value: 0.6, unit: "1", quality: .computed)
        ])
        let answer = try await server.get("/api/v1/exports/betas", key: key)
        #expect(answer.status == 409)
        #expect(answer.body.contains("sum to 0,933334, not exactly 1,000000"), "\(answer.body)")
    }
}
