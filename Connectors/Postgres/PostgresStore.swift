import EnchufeCore
import Foundation
import Logging
import PostgresNIO
import Synchronization

/// The PostgreSQL store: the same tables and upsert rules as the SQLite store, on a PostgresNIO
/// connection pool. Readings arrive in batches through `COPY ... FROM STDIN` into a temporary staging
/// table and are merged with one set-based upsert, all in one transaction (see `upsert`).
///
/// A server that is down or restarting surfaces as `UnavailableError`, which the engine retries until
/// the server is back; any other server error keeps its SQLSTATE and message.
///
/// The store serves requests while its `run()` runs (the pool's connections live in that task):
/// whoever opens it runs it — `enchufe run` around its whole service group, a command or a test
/// with `whileRunning`, a `postgres.sql` node of its own from `start` to `close`.
public final class PostgresStore: Store {
    public let displayName: String
    let client: PostgresClient
    let logger: Logger
    let url: PostgresURL
    /// Whether `run()` is running.
    private let running = Flag()
    let notesBox = Mutex<[String]>([])
    /// Set when a batch met keys already stored: the next batches go straight to the merge path.
    let mergeRecently = Flag()

    public convenience init(url text: String) throws {
        try self.init(url: text, logger: Logger(label: "enchufe.postgres"))
    }

    public init(url text: String, logger: Logger) throws {
        url = try PostgresURL(text)
        displayName = url.display
        self.logger = logger
        // PostgresNIO reports every failed connection attempt at info: while a server is away the hub
        // says so once per node (UnavailableError), so its own chatter is kept to warnings and above.
        var background = logger
        background.logLevel = max(logger.logLevel, .warning)
        client = PostgresClient(configuration: url.clientConfiguration, backgroundLogger: background)
    }

    /// Runs the connection pool until the task is cancelled.
    public func run() async {
        running.value.store(true, ordering: .releasing)
        await client.run()
        running.value.store(false, ordering: .releasing)
    }

    /// Nothing to let go: the pool closes its connections when `run()` is cancelled.
    public func close() async throws {}

    public func ping() async throws {
        try await withConnection { connection in
            try await connection.query("SELECT 1", logger: self.logger).collect()
        }
    }

    public func startupNotes() async -> [String] { notesBox.withLock { $0 } }

    // MARK: Connections and errors

    /// Runs `body` on a pooled connection. Waiting longer than `connect_timeout` for one, or losing it,
    /// throws `UnavailableError`; server errors come back as `PostgresServerError` (or
    /// `PermanentError` when the data itself is at fault).
    @discardableResult
    func withConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let leased = Flag()
        let timeout = Duration.seconds(url.connectTimeout)
        do {
            return try await withThrowingTaskGroup(of: T?.self) { group in
                group.addTask {
                    try await self.client.withConnection { connection in
                        leased.value.store(true, ordering: .relaxed)
                        return try await Self.untilClosed(connection, address: self.url.address) { try await body(connection) }
                    }
                }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    if leased.value.load(ordering: .relaxed) { return nil }
                    try self.checkRunning()
                    throw UnavailableError(service: "PostgreSQL at \(self.url.address)", reason: "no connection within \(self.url.connectTimeout)s")
                }
                while let result = try await group.next() {
                    if let result {
                        group.cancelAll()
                        return result
                    }
                }
                throw CancellationError()
            }
        } catch {
            throw classify(error)
        }
    }

    /// Runs `body`, which uses `connection`, and returns what it returns — or throws
    /// `UnavailableError` once the connection has been found closed at two checks `interval` apart
    /// while `body` still runs. PostgresNIO 1.33.2 can drop the continuation of a call whose
    /// connection the server closes under it: in the PostgreSQL restart test a `copyFrom` did
    /// ("leaked its continuation without resuming it"), and its batch, never failed, was never retried.
    /// `body` runs in a task of its own so that such a call can be left behind; its transaction died
    /// with the connection, so the batch retried is stored once.
    static func untilClosed<T: Sendable>(
        _ connection: PostgresConnection, address: String, interval: Duration = .seconds(1),
        _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let outcome = FirstOutcome<T>()
        let work = Task {
            do { outcome.offer(.success(try await body())) } catch { outcome.offer(.failure(error)) }
        }
        let watch = Task {
            var closedBefore = false
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                let closed = connection.isClosed
                if closed && closedBefore {
                    outcome.offer(.failure(UnavailableError(
                        service: "PostgreSQL at \(address)", reason: "the connection closed and the call on it did not return")))
                    return
                }
                closedBefore = closed
            }
        }
        defer { watch.cancel() }
        return try await withTaskCancellationHandler {
            try await outcome.value()
        } onCancel: {
            work.cancel()
        }
    }

    /// `withConnection` for a body that must run in the caller's task (one that streams to a
    /// non-Sendable writer). The server is first reached through `ping()`, which has the connect
    /// timeout, so an unreachable server fails fast here too.
    func withConnectionInTask<T>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await ping()
        do {
            return try await client.withConnection { connection in try await body(connection) }
        } catch {
            throw classify(error)
        }
    }

    /// Runs `body` in a transaction: committed when it returns, rolled back when it throws.
    @discardableResult
    func withTransaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await withConnection { connection in
            try await connection.withTransaction(logger: self.logger) { connection in try await body(connection) }
        }
    }

    /// A store used while nothing runs it waits for a connection that never comes, which would look
    /// like a server that is down: a mistake in the code, said as such once the wait is over.
    private func checkRunning() throws {
        guard running.value.load(ordering: .acquiring) else {
            throw PermanentError("the PostgreSQL store at \(url.address) is used while it is not running (PostgresStore.run, Store.whileRunning)")
        }
    }

    /// SQLSTATE classes that mean "the server is not there right now" rather than "this request is wrong":
    /// connection exceptions, operator intervention (shutdown, restart), insufficient resources, and
    /// serialization failures and deadlocks that a retry resolves.
    static let transientStates: [String] = ["08", "53", "57P01", "57P02", "57P03", "40001", "40P01", "55P03", "58"]
    /// Data at fault (bad values, constraint violations): retrying cannot help. A unique violation
    /// (23505) is not among them: it means another writer inserted the same key meanwhile, and a
    /// retry merges with it.
    static let dataStates: [String] = ["22", "23"]

    func classify(_ error: any Error) -> any Error {
        switch error {
        case is CancellationError, is UnavailableError, is PermanentError, is PostgresServerError, is LeaseLost:
            return error
        case let error as PostgresTransactionError:
            if let closure = error.closureError { return classify(closure) }
            if let begin = error.beginError { return classify(begin) }
            if let commit = error.commitError { return classify(commit) }
            return classify(error.rollbackError ?? error)
        case let error as PSQLError:
            guard error.code == .server, let info = error.serverInfo else {
                return UnavailableError(service: "PostgreSQL at \(url.address)", reason: Self.reason(error))
            }
            let state = info[.sqlState] ?? ""
            let message = Self.serverMessage(info)
            if Self.transientStates.contains(where: state.hasPrefix) {
                return UnavailableError(service: "PostgreSQL at \(url.address)", reason: "\(message) (SQLSTATE \(state))")
            }
            if Self.dataStates.contains(where: state.hasPrefix) && state != "23505" {
                return PermanentError("PostgreSQL refused the data: \(message) (SQLSTATE \(state))")
            }
            return PostgresServerError(sqlState: state, message: message)
        default:
            // Pool errors (circuit breaker open, shut down) and socket errors.
            return UnavailableError(service: "PostgreSQL at \(url.address)", reason: Self.reason(error))
        }
    }

    static func serverMessage(_ info: PSQLError.ServerInfo) -> String {
        var text = info[.message] ?? "error"
        if let detail = info[.detail] { text += " — \(detail)" }
        return text
    }

    /// A description of a client-side failure that names its kind (PSQLError hides everything by default).
    static func reason(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            var text = "\(error.code)"
            if let underlying = error.underlying { text += ": \(underlying)" }
            if let info = error.serverInfo { text += ": \(serverMessage(info))" }
            return text
        }
        return "\(error)"
    }
}

/// An error PostgreSQL answered with, other than a transient or data one (a missing table, a denied
/// permission): its SQLSTATE and message.
public struct PostgresServerError: Error, CustomStringConvertible {
    public var sqlState: String
    public var message: String
    public var description: String { "PostgreSQL: \(message) (SQLSTATE \(sqlState))" }
}

final class Flag: Sendable {
    let value = Atomic<Bool>(false)
}

/// The first result offered, for one waiter; later offers are dropped. The waiter waits for it
/// even when cancelled (the caller cancels the work, whose result then comes soon).
final class FirstOutcome<T: Sendable>: Sendable {
    private struct State {
        var result: Result<T, any Error>?
        var waiter: CheckedContinuation<T, any Error>?
    }

    private let state = Mutex(State())

    func offer(_ result: Result<T, any Error>) {
        let waiter = state.withLock { state -> CheckedContinuation<T, any Error>? in
            guard state.result == nil else { return nil }
            state.result = result
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(with: result)
    }

    /// The first result, once there is one (called once).
    func value() async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let ready = state.withLock { state -> Result<T, any Error>? in
                if state.result == nil { state.waiter = continuation }
                return state.result
            }
            if let ready { continuation.resume(with: ready) }
        }
    }
}
