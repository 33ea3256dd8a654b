import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// This process as one instance of a deployment: its id (`--instance`, default host name and pid)
/// and its heartbeat in the store, every `interval`, so that `GET /api/v1/cluster` shows which
/// instances run. A clean stop takes the instance out. It also removes expired named values (a webhook's marks).
public final class InstanceHeartbeat: Service, Sendable {
    public let id: String
    let store: any Store
    let interval: Duration
    let logger: Logger
    let startedAt = Date()
    private let address = Mutex("")

    public init(id: String, store: any Store, interval: Duration = .seconds(5), logger: Logger) {
        self.id = id
        self.store = store
        self.interval = interval
        self.logger = logger
    }

    /// The default instance id: host name and process id.
    public static var defaultID: String { "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)" }

    /// The address the instance serves HTTP on, once it is bound: told at once with a heartbeat.
    public func serving(on address: String) async {
        self.address.withLock { $0 = address }
        try? await store.saveInstance(record(at: Date()))
    }

    func record(at now: Date) -> InstanceRecord {
        InstanceRecord(
            id: id, host: ProcessInfo.processInfo.hostName, pid: Int(ProcessInfo.processInfo.processIdentifier),
            http: address.withLock { $0 }, startedAt: startedAt, heartbeatAt: now)
    }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            var failing = false
            var beats = 0
            while !Task.isCancelled {
                beats += 1
                // About once a minute: the marks of requests (HMAC signatures, idempotency keys) that expired.
                if beats % 12 == 1 { _ = try? await self.store.purgeExpiredValues(now: Date()) }
                // About once an hour: alerts' changes of state older than 90 days.
                if beats % 720 == 1 { _ = try? await self.store.purgeAlertEvents(before: Date().addingTimeInterval(-90 * 86_400)) }
                do {
                    try await self.store.saveInstance(self.record(at: Date()))
                    if failing { self.logger.notice("instance heartbeat stored again") }
                    failing = false
                } catch {
                    if !failing { self.logger.warning("instance heartbeat not stored: \(error)") }
                    failing = true
                }
                try await Task.sleep(for: self.interval)
            }
        }
        try? await store.removeInstance(id: id)
    }

    /// An instance is alive while its last heartbeat is at most three intervals old.
    public static func isAlive(_ instance: InstanceRecord, now: Date, interval: Duration = .seconds(5)) -> Bool {
        now.timeIntervalSince(instance.heartbeatAt) <= 3 * interval.seconds
    }
}
