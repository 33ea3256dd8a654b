import EnchufeCore
import Foundation
@testable import Postgres
import PostgresNIO
import TestSupport
import Testing

/// A call on a pooled connection that never returns once the server closed the connection (as
/// PostgresNIO's `copyFrom` did in the PostgreSQL restart test) must not hold up its node forever.
@Suite(.timeLimit(.minutes(1))) struct PostgresClosedConnectionTests {
    @Test func aCallThatNeverReturnsAfterItsConnectionClosedIsGivenUpAsUnavailable() async throws {
        let server = try await PostgresServer.shared()
        let store = try PostgresStore(url: try server.createDatabase())
        // What a call whose continuation was dropped looks like: it returns only when told.
        let stuck = OneShot()
        defer { stuck.fire() }
        try await store.whileRunning {
            let error = await #expect(throws: UnavailableError.self) {
                try await store.withConnection { connection in
                    try await connection.close()
                    await stuck.wait()
                }
            }
            #expect(error?.description.contains("the connection closed and the call on it did not return") == true, "\(error.map { "\($0)" } ?? "")")
            // The pool gives a new connection for the retry.
            try await store.ping()
        }
    }

    @Test func aCallOnAnOpenConnectionReturnsItsResultAndIsCancelledWithItsCaller() async throws {
        let server = try await PostgresServer.shared()
        let store = try PostgresStore(url: try server.createDatabase())
        try await store.whileRunning {
            let answer = try await store.withConnection { connection in
                var value = 0
                for try await v in try await connection.query("SELECT 41 + 1", logger: store.logger).decode(Int.self) { value = v }
                return value
            }
            #expect(answer == 42)

            let started = OneShot()
            let caller = Task {
                try await store.withConnection { connection in
                    started.fire()
                    try await Task.sleep(for: .seconds(3600))
                }
            }
            await started.wait()
            caller.cancel()
            await #expect(throws: CancellationError.self) { try await caller.value }
        }
    }
}
