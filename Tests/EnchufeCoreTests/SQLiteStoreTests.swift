import EnchufeCore
import Foundation
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
        #expect(try await store.migrate() == ["001-initial", "002-instances", "003-request-marks"])
        #expect(try await store.upsert([Reading(series: "s", quantity: "q", ts: Date(timeIntervalSince1970: 0), resolution: "PT1H", value: 1, unit: "kWh")]).inserted == 1)
    }

    @Test func storeURLsAreOpenedByScheme() async throws {
        let opener = StoreOpener()
        await #expect(throws: StoreError.self) { try await opener.open("mysql://x") }
        #expect(StoreOpener.redacted("postgres://hub:s3cret@db:5432/enchufe") == "postgres://hub:***@db:5432/enchufe")
        #expect(StoreOpener.redacted("sqlite:var/enchufe.sqlite") == "sqlite:var/enchufe.sqlite")
    }
}
