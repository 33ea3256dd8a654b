import Foundation
import Logging
import Synchronization

/// Log lines on standard error, as text or one JSON object per line, with the flow and node ids of
/// the line's logger and every known secret hidden.
public struct HubLogHandler: LogHandler {
    public enum Format: String, Sendable, CaseIterable { case text, json }

    /// Secrets to hide in every line; set once the flows are loaded.
    public static let redactor = Mutex(Redactor())
    private static let output = Mutex(FileHandle.standardError)

    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    let label: String
    let format: Format

    public init(label: String, format: Format, level: Logger.Level) {
        self.label = label
        self.format = format
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var all = metadata
        if let extra = event.metadata { all.merge(extra) { _, new in new } }
        let redactor = Self.redactor.withLock { $0 }
        let message = redactor.redact("\(event.message)")
        let now = ISO8601.string(Date())
        let line: String
        switch format {
        case .json:
            var o: [String: JSONValue] = ["ts": .string(now), "level": .string(event.level.rawValue), "msg": .string(message)]
            for (k, v) in all { o[k] = .string(redactor.redact("\(v)")) }
            line = JSONValue.object(o).jsonText()
        case .text:
            var where_ = ""
            if case .string(let flow)? = all["flow"] {
                where_ = " [\(flow)" + (all["node"].map { "/\($0)" } ?? "") + "]"
            }
            let rest = all.filter { $0.key != "flow" && $0.key != "node" }.sorted { $0.key < $1.key }
                .map { " \($0.key)=\(redactor.redact("\($0.value)"))" }.joined()
            line = "\(now) \(event.level.rawValue)\(where_) \(message)\(rest)"
        }
        let data = Data((line + "\n").utf8)
        Self.output.withLock { $0.write(data) }
    }
}
