import Foundation
import GRDB
import Synchronization

/// The embedded default store: one SQLite file in WAL mode, through GRDB.
/// Commits are synced to disk before they return (`synchronous = FULL`); sources are acknowledged
/// only after the commit.
public final class SQLiteStore: Store {
    let writer: any DatabaseWriter
    public let displayName: String
    private let path: String
    /// The lock file held while an instance runs on this store (`claimForOneInstance`).
    private let lock = Mutex<ExclusiveFileLock?>(nil)

    /// `sqlite:PATH`, `sqlite:///ABSOLUTE/PATH` or `sqlite::memory:`.
    public convenience init(url: String) throws {
        guard url.hasPrefix("sqlite:") else { throw StoreError.unsupportedURL(url, schemes: ["sqlite"]) }
        var path = String(url.dropFirst("sqlite:".count))
        if path.hasPrefix("//") { path = String(path.dropFirst(2)) }
        try self.init(path: path)
    }

    public init(path: String) throws {
        self.path = path
        var config = Configuration()
        config.busyMode = .timeout(10)
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        if path == ":memory:" || path.isEmpty {
            writer = try DatabaseQueue(configuration: config)
            displayName = "sqlite::memory:"
        } else {
            let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
            do {
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
                writer = try DatabasePool(path: path, configuration: config)
            } catch {
                throw StoreError.cannotOpen("sqlite:\(path)", reason: "\(error)")
            }
            displayName = "sqlite:\(path)"
        }
    }


    /// A SQLite file serves one instance (`claimForOneInstance`).
    public var isShared: Bool { false }

    /// Makes this process the one instance running on the file: a second `enchufe run` on it is
    /// refused, saying which instance has it (several instances need PostgreSQL). The claim lasts
    /// as long as the store (an exclusive lock on `PATH.lock`, released by the system when the
    /// process ends, however it ends).
    public func claimForOneInstance(_ instance: String) throws {
        guard path != ":memory:", !path.isEmpty else { return }
        let claim: ExclusiveFileLock
        do {
            claim = try ExclusiveFileLock(path: path + ".lock")
        } catch {
            let reason =
                switch error {
                case .cannotOpen(let reason): reason
                case .heldByAnotherProcess(let holder):
                    "it is in use by another enchufe run (instance \(holder ?? "another process")): a SQLite store serves one instance; to run several, use PostgreSQL (--store postgres://...)"
                case .heldInThisProcess: "it is in use by another hub in this process: a SQLite store serves one instance"
                }
            throw StoreError.cannotOpen(displayName, reason: reason)
        }
        claim.write(instance + "\n")
        lock.withLock { $0 = claim }
    }

    public func ping() async throws {
        _ = try await writer.read { try Int.fetchOne($0, sql: "SELECT 1") }
    }

    public func close() async throws {
        try writer.close()
    }

    // MARK: Time

    static func millis(_ date: Date) -> Int64 { date.epochMilliseconds }
    static func date(_ millis: Int64) -> Date { Date(timeIntervalSince1970: Double(millis) / 1000) }
}
