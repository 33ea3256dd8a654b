@testable import EnchufeCore
import Foundation
import GRDB
import StoreConformance
import Testing

@Suite struct SQLiteStoreTests {
    @Test(arguments: StoreConformance.cases)
    func conformance(_ check: StoreConformance.Case) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("enchufe-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try SQLiteStore(url: "sqlite:\(directory.appendingPathComponent("store.sqlite").path)")
        try await store.migrate()
        try await check.run(store)
        try await store.close()
    }

    @Test func inMemoryStoreWorks() async throws {
        let store = try SQLiteStore(url: "sqlite::memory:")
        #expect(try await store.migrate() == ["001-initial", "002-instances", "003-request-marks", "004-named-values", "005-alerts", "006-forecasts", "007-supply-pv", "008-supply-market"])
        #expect(try await store.upsert([Reading(series: "s", quantity: "q", ts: Date(timeIntervalSince1970: 0), resolution: "PT1H", value: 1, unit: "kWh")]).inserted == 1)
    }

    @Test func upgradingToNamedValuesCarriesOverTheWebhookMarksAndTheDatadisLedger() async throws {
        let store = try SQLiteStore(url: "sqlite::memory:")
        #expect(try await store.migrate(through: "003-request-marks") == ["001-initial", "002-instances", "003-request-marks"])
        let later = Date().addingTimeInterval(3600)
        try await store.writer.write { db in
            try db.execute(
                sql: "INSERT INTO request_marks (tenant, flow, node, key, value, expires_at) VALUES ('t1', 'f', 'hook', 'hmac:ab', '17', ?)",
                arguments: [later.epochMilliseconds])
            try db.execute(
                sql: "INSERT INTO checkpoints (tenant, flow, node, key, value, updated_at) VALUES ('t1', 'datadis-ledger', 'abc', 'q', '{}', 0), ('t1', 'f', 'n', 'k', 'v', 0)")
        }
        #expect(try await store.migrate() == ["004-named-values", "005-alerts", "006-forecasts", "007-supply-pv", "008-supply-market"])
        #expect(try await store.value(NamedKey(tenant: "t1", namespace: "webhook/f/hook", name: "hmac:ab"), now: Date()) == "17")
        #expect(try await store.value(NamedKey(tenant: "t1", namespace: "datadis-ledger/abc", name: "q"), now: Date().addingTimeInterval(1e8)) == "{}")
        #expect(try await store.checkpoint(CheckpointKey(tenant: "t1", flow: "datadis-ledger", node: "abc", key: "q")) == nil)
        #expect(try await store.checkpoint(CheckpointKey(tenant: "t1", flow: "f", node: "n", key: "k"))?.value == "v")
    }

    @Test func storeURLsAreOpenedByScheme() async throws {
        let opener = StoreOpener()
        await #expect(throws: StoreError.self) { try await opener.open("mysql://x") }
        #expect(StoreOpener.redacted("postgres://hub:s3cret@db:5432/enchufe") == "postgres://hub:***@db:5432/enchufe")
        #expect(StoreOpener.redacted("sqlite:var/enchufe.sqlite") == "sqlite:var/enchufe.sqlite")
    }
}
