import EnchufeCore
import Foundation
import Postgres
import StoreConformance
import TestSupport
import Testing

/// The store protocol on a real PostgreSQL (started by TestSupport), one fresh database per case.
@Suite struct PostgresStoreTests {
    func makeStore() async throws -> PostgresStore {
        let server = try await PostgresServer.shared()
        let store = try PostgresStore(url: try server.createDatabase())
        try await store.migrate()
        return store
    }

    @Test(arguments: StoreConformance.cases)
    func conformance(_ check: StoreConformance.Case) async throws {
        let store = try await makeStore()
        try await check.run(store)
        try await store.close()
    }

    @Test func aBillingAppPullingChangesWhileReadingsArriveEndsWithTheStoresContentSeeingEachChangeOnce() async throws {
        let store = try await makeStore()
        let outcome = try await ChangesFeedCheck.run(store: store)
        #expect(outcome.problems == [])
        try await store.close()
    }
}
