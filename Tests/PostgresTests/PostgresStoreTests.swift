import EnchufeCore
import Foundation
@testable import Postgres
import PostgresNIO
import StoreConformance
import TestSupport
import Testing

/// The store protocol on a real PostgreSQL (started by TestSupport), one fresh database per case.
@Suite struct PostgresStoreTests {
    /// Runs `body` with a store on a fresh database, running and migrated.
    func withStore(_ body: (PostgresStore) async throws -> Void) async throws {
        let server = try await PostgresServer.shared()
        let store = try PostgresStore(url: try server.createDatabase())
        try await store.whileRunning {
            try await store.migrate()
            try await body(store)
        }
    }

    @Test(arguments: StoreConformance.cases)
    func conformance(_ check: StoreConformance.Case) async throws {
        try await withStore { store in try await check.run(store) }
    }

    @Test func upgradingToNamedValuesCarriesOverTheWebhookMarksAndTheDatadisLedger() async throws {
        let server = try await PostgresServer.shared()
        let store = try PostgresStore(url: try server.createDatabase())
        try await store.whileRunning {
            #expect(try await store.migrate(through: "003-request-marks") == ["001-initial", "002-instances", "003-request-marks"])
            let later = Date().addingTimeInterval(3600)
            try await store.withConnection { connection in
                try await connection.query(
                    "INSERT INTO request_marks (tenant, flow, node, key, value, expires_at) VALUES ('t1', 'f', 'hook', 'hmac:ab', '17', \(later))",
                    logger: store.logger)
                try await connection.query(
                    "INSERT INTO checkpoints (tenant, flow, node, key, value, updated_at) VALUES ('t1', 'datadis-ledger', 'abc', 'q', '{}', now()), ('t1', 'f', 'n', 'k', 'v', now())",
                    logger: store.logger)
            }
            #expect(try await store.migrate() == ["004-named-values", "005-alerts", "006-forecasts", "007-supply-pv", "008-supply-market"])
            #expect(try await store.value(NamedKey(tenant: "t1", namespace: "webhook/f/hook", name: "hmac:ab"), now: Date()) == "17")
            #expect(try await store.value(NamedKey(tenant: "t1", namespace: "datadis-ledger/abc", name: "q"), now: Date().addingTimeInterval(1e8)) == "{}")
            #expect(try await store.checkpoint(CheckpointKey(tenant: "t1", flow: "datadis-ledger", node: "abc", key: "q")) == nil)
            #expect(try await store.checkpoint(CheckpointKey(tenant: "t1", flow: "f", node: "n", key: "k"))?.value == "v")
        }
    }

    @Test func aBillingAppPullingChangesWhileReadingsArriveEndsWithTheStoresContentSeeingEachChangeOnce() async throws {
        try await withStore { store in
            let outcome = try await ChangesFeedCheck.run(store: store)
            #expect(outcome.problems == [])
        }
    }
}
