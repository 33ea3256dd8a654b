import Dispatch
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Reloads the hub's flows when their files change on disk (checked every `interval`: a file added,
/// removed, or with another modification time or size) and on SIGHUP.
public struct FlowWatcher: Service {
    let paths: [String]
    let hub: Hub
    let interval: Duration
    let logger: Logger

    public init(paths: [String], hub: Hub, interval: Duration = .milliseconds(500), logger: Logger) {
        self.paths = paths
        self.hub = hub
        self.interval = interval
        self.logger = logger
    }

    /// What identifies the files' contents cheaply: each flow file with its modification time and
    /// size; nil when the folders cannot be listed now (which is no change, not "every file removed").
    static func signature(_ paths: [String]) -> [String: String]? {
        guard let list = try? FlowLoader.flowFiles(in: paths) else { return nil }
        var files: [String: String] = [:]
        for file in list {
            let attributes = try? FileManager.default.attributesOfItem(atPath: file)
            let modified = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            files[file] = "\(modified) \(attributes?[.size] as? Int ?? -1)"
        }
        return files
    }

    public func run() async throws {
        let hangup = Hangup()
        signal(SIGHUP, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        source.setEventHandler { hangup.received.store(true, ordering: .relaxed) }
        source.resume()
        defer { source.cancel() }
        let first = Self.signature(paths) ?? [:]
        try? await cancelWhenGracefulShutdown {
            var last = first
            while !Task.isCancelled {
                try await Task.sleep(for: interval)
                guard let now = Self.signature(paths) else { continue }
                let signalled = hangup.received.exchange(false, ordering: .relaxed)
                guard now != last || signalled else { continue }
                last = now
                logger.info(signalled ? "SIGHUP: reloading the flow files" : "flow files changed: reloading")
                do {
                    let report = try await hub.reloadFromSource()
                    if !report.changed { logger.info("reload: no flow changed") }
                } catch {
                    logger.error("reload failed: \(error); the flows keep running as they were")
                }
            }
        }
    }
}

private final class Hangup: Sendable {
    let received = Atomic<Bool>(false)
}
