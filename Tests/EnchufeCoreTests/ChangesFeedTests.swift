import EnchufeCore
import Foundation
import Testing
import TestSupport

@Suite struct ChangesFeedTests {
    @Test func aBillingAppPullingChangesWhileReadingsArriveEndsWithTheStoresContentSeeingEachChangeOnce() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("enchufe-changes-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try SQLiteStore(path: dir.appendingPathComponent("hub.sqlite").path)
        try await store.migrate()
        let outcome = try await ChangesFeedCheck.run(store: store)
        #expect(outcome.problems == [])
    }
}
