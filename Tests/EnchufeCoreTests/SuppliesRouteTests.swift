import EnchufeCore
import Foundation
import Testing
import TestSupport

@Suite struct SuppliesRouteTests {
    @Test func anAdminKeyRegistersSuppliesOfItsTenantAndBadFieldsAreNamed() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("enchufe-supplies-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try SQLiteStore(path: dir.appendingPathComponent("hub.sqlite").path)
        try await store.migrate()
        let (_, admin) = try await APIKeys.create(tenant: "t", scopes: ["admin", "read"], name: "ops", at: Date(), store: store)
        let (_, reader) = try await APIKeys.create(tenant: "t", scopes: ["read"], name: "billing", at: Date(), store: store)
        let (_, other) = try await APIKeys.create(tenant: "u", scopes: ["admin", "read"], name: "theirs", at: Date(), store: store)
        let server = try await APIServer.start(store: store)
        defer { server.stop() }
        let cups = "ES0031000000000001BJ0F"

        let put = try await server.put("/api/v1/supplies/\(cups)", key: admin, json: #"{"tariff": "2.0TD", "zone": "canarias", "community": "roof", "coefficient": 0.25, "contracted_power_kw": [4.6, 6.9], "valid_from": "2026-01-01"}"#)
        #expect(put.status == 200)
        let listed = try JSONValue.parse(try await server.get("/api/v1/supplies", key: reader).body)["supplies"]?.arrayValue ?? []
        #expect(listed.count == 1)
        #expect(listed.first?["zone"]?.stringValue == "canarias" && listed.first?["coefficient"]?.doubleValue == 0.25)
        #expect(listed.first?["contracted_power_kw"]?.arrayValue?.compactMap(\.doubleValue) == [4.6, 6.9])
        #expect(try await store.supplies(tenant: "t").first?.community == "roof")
        #expect(try await server.put("/api/v1/supplies/\(cups)", key: reader, json: "{}").status == 403)

        // A PV system on the supply, for the solar forecasts: losses in % or as a fraction.
        let pv = try await server.put(
            "/api/v1/supplies/\(cups)", key: admin,
            json: #"{"tariff": "2.0TD", "valid_from": "2026-01-01", "pv": {"kwp": 4.2, "tilt": 25, "azimuth": 170, "losses": 12, "latitude": 28.1, "longitude": -15.4}}"#)
        #expect(pv.status == 200)
        let declared = try #require(try await store.supplies(tenant: "t").first?.pv)
        #expect(declared.kwp == 4.2 && declared.tilt == 25 && declared.azimuth == 170 && abs(declared.losses - 0.12) < 1e-12 && declared.inverterKW == 4.2)
        let shown = try JSONValue.parse(try await server.get("/api/v1/supplies", key: reader).body)["supplies"]?.arrayValue?.first?["pv"]
        #expect(shown?["latitude"]?.doubleValue == 28.1 && shown?["kwp"]?.doubleValue == 4.2)
        #expect((try JSONValue.parse(try await server.get("/api/v1/supplies", key: other).body)["supplies"]?.arrayValue ?? [JSONValue.null]).isEmpty)

        for (body, complaint) in [
            (#"{"tariff": "2.0A"}"#, "tariff '2.0A'"), (#"{"zone": "mars"}"#, "zone 'mars'"), (#"{"coefficient": 1.5}"#, "coefficient must be"),
            (#"{"valid_from": "2026-02-01", "valid_to": "2026-01-01"}"#, "valid_to is before valid_from"), (#"{"colour": "red"}"#, "unknown field 'colour'"),
            (#"{"contracted_power_kw": "lots"}"#, "contracted_power_kw must be"), ("[1]", "must be a JSON object"),
            (#"{"pv": {"kwp": 5}}"#, "pv.latitude is required"), (#"{"pv": {"kwp": 5, "latitude": 95, "longitude": 0}}"#, "pv.latitude must be"),
            (#"{"pv": {"kwp": 5, "latitude": 40, "longitude": -3, "colour": 1}}"#, "unknown field 'colour'"), (#"{"pv": 5}"#, "pv must be an object"),
        ] {
            let answer = try await server.put("/api/v1/supplies/\(cups)", key: admin, json: body)
            #expect(answer.status == 400 && answer.body.contains(complaint), "\(body): \(answer.body)")
        }
        let badCUPS = try await server.put("/api/v1/supplies/ES0031000000000001XX0F", key: admin, json: "{}")
        #expect(badCUPS.status == 400 && badCUPS.body.contains("is not a CUPS"))
    }
}
