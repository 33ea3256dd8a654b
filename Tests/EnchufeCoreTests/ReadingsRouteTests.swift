import EnchufeCore
import Foundation
import Testing
import TestSupport

@Suite struct ReadingsRouteTests {
    /// Two days of quarter-hour consumption and power for one supply of tenant `a`, and one reading of tenant `b`.
    func serve() async throws -> (APIServer, key: String, store: SQLiteStore, dir: URL) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("enchufe-readings-\(UUID().uuidString)")
        let store = try SQLiteStore(path: dir.appendingPathComponent("hub.sqlite").path)
        try await store.migrate()
        let t0 = ISO8601.date("2026-03-28T23:00:00Z")!  // midnight of the spring DST day in Madrid
        var readings: [Reading] = []
        for k in 0..<(2 * 96) {
            let ts = t0.addingTimeInterval(Double(k) * 900)
            readings.append(Reading(tenant: "a", series: "ES0031000000000001BJ0F", quantity: "consumption", ts: ts, resolution: "PT15M", value: Double(k % 7) / 100, unit: "kWh", quality: k == 5 ? .estimated : .measured))
            readings.append(Reading(tenant: "a", series: "device:inv-1", quantity: "power", ts: ts, resolution: "PT15M", value: Double(k % 4), unit: "kW"))
        }
        readings.append(Reading(tenant: "b", series: "ES0031000000000009ZZ0F", quantity: "consumption", ts: t0, resolution: "PT1H", value: 9, unit: "kWh"))
        _ = try await store.upsert(readings)
        let (_, key) = try await APIKeys.create(tenant: "a", scopes: ["read"], name: "billing", at: Date(), store: store)
        return (try await APIServer.start(store: store), key, store, dir)
    }

    @Test func readingsComeInEachFormatAggregatedOnRequestAndOnlyTheKeysTenants() async throws {
        let (server, key, _, dir) = try await serve()
        defer { server.stop(); try? FileManager.default.removeItem(at: dir) }

        let all = try await server.get("/api/v1/readings", key: key)
        #expect(all.status == 200 && all.type.hasPrefix("application/json"))
        let rows = try JSONValue.parse(all.body)["readings"]?.arrayValue ?? []
        #expect(rows.count == 2 * 2 * 96)
        #expect(!rows.contains { $0["series"]?.stringValue == "ES0031000000000009ZZ0F" }, "another tenant's reading")

        // Hourly: energy summed, power averaged; the spring day has 23 hours.
        let hourly = try await server.get("/api/v1/readings?series=ES0031000000000001BJ0F,device:inv-1&from=2026-03-29&to=2026-03-30&resolution=PT1H&format=ndjson", key: key)
        let lines = hourly.body.split(separator: "\n").compactMap { try? JSONValue.parse(String($0)) }
        let energy = lines.filter { $0["quantity"]?.stringValue == "consumption" }
        let power = lines.filter { $0["quantity"]?.stringValue == "power" }
        #expect(hourly.type.hasPrefix("application/x-ndjson"))
        #expect(energy.count == 23 && power.count == 23)
        #expect(abs((energy[1]["value"]?.doubleValue ?? 0) - (4 + 5 + 6 + 0) / 100.0) < 1e-9)
        #expect(energy[1]["quality"]?.stringValue == "estimated", "an hour with an estimated quarter is estimated")
        #expect(power[0]["value"]?.doubleValue == 1.5)
        #expect(energy[0]["resolution"]?.stringValue == "PT1H")
        // Daily in CSV: one row per series and local day; 48 UTC hours from Madrid's midnight of the
        // 23-hour day end an hour into the third day.
        let daily = try await server.get("/api/v1/readings?resolution=P1D&format=csv&quantity=consumption", key: key)
        let csv = daily.body.split(separator: "\n").map { $0.split(separator: ",") }
        #expect(daily.body.hasPrefix("series,quantity,ts,resolution,value,unit,quality,revision,seq\n"))
        #expect(csv.dropFirst().map { String($0[2]) } == ["2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z", "2026-03-30T22:00:00Z"])
        let firstDay = (0..<92).reduce(0.0) { $0 + Double($1 % 7) / 100 }
        #expect(abs((Double(csv[1][4]) ?? 0) - firstDay) < 1e-9 && csv[1][3] == "P1D")
    }

    @Test func badQueriesAndMissingKeysAreRefusedSayingWhy() async throws {
        let (server, key, _, dir) = try await serve()
        defer { server.stop(); try? FileManager.default.removeItem(at: dir) }
        #expect(try await server.get("/api/v1/readings", key: nil).status == 401)
        for (query, words) in [("from=yesterday", "from 'yesterday'"), ("format=xml", "format 'xml'"), ("resolution=PT7M", "resolution 'PT7M'"),
                               ("from=2026-03-30&to=2026-03-29", "to must be after from")] {
            let answer = try await server.get("/api/v1/readings?\(query)", key: key)
            #expect(answer.status == 400 && answer.body.contains(words), "\(query): \(answer.body)")
        }
        #expect(try await server.get("/api/v1/changes?after=-1", key: key).status == 400)
        #expect(try await server.get("/api/v1/changes?limit=0", key: key).status == 400)
    }
}
