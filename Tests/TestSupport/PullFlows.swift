import EnchufeCore
import Foundation
import Logging

/// Runs a pull connector the way a flow does, to the end: a `test.trigger` source sends its
/// `payloads` (one trigger each, default one empty payload) and ends, so the flow drains, the
/// readings are committed to the store and the checkpoints written; then `run` returns.
public enum PullFlows {
    public static let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    public static let triggerSpec = NodeSpec(
        type: "test.trigger", kind: .source, summary: "Sends its payloads, one message each, then ends",
        options: [OptionSpec("payloads", .list(.any), default: [.null], doc: "One message per element.")],
        example: "", make: { build in .source(Trigger(payloads: build.options["payloads"]?.arrayValue ?? [.null])) })

    struct Trigger: SourceNode {
        let payloads: [JSONValue]

        func run(_ context: SourceContext) async throws {
            for payload in payloads {
                let delivery = try await context.emit(Message(payload: payload))
                _ = await delivery.outcome()
            }
        }
    }

    /// An empty, migrated SQLite store in memory.
    public static func memoryStore() async throws -> SQLiteStore {
        let store = try SQLiteStore(url: "sqlite::memory:")
        try await store.migrate()
        return store
    }

    public struct Failure: Error, CustomStringConvertible { public var description: String }

    /// Loads `yaml` (node types: Core's, the trigger, and `specs`) and runs it until it ends.
    public static func run(
        _ yaml: String, specs: [NodeSpec], store: any Store, clock: any HubClock, metrics: HubMetrics = HubMetrics(),
        logger: Logger = quiet
    ) async throws {
        let registry = NodeRegistry(CoreNodes.specs + [triggerSpec] + specs)
        let (flow, diagnostics) = FlowLoader(registry: registry, environment: [:]).load(text: yaml, file: "test.yaml")
        guard let flow, !diagnostics.contains(where: { $0.severity == .error }) else { throw Failure(description: "the flow does not load: \(diagnostics)") }
        let hub = Hub(flows: [flow], registry: registry, environment: EngineEnvironment(store: store, clock: clock, metrics: metrics, logger: logger))
        if let problem = hub.notStarted.first { throw Failure(description: problem.description) }
        await hub.runFlows()
    }

    /// The value of `enchufe_pull_requests_total` for a node and result (0 when absent).
    public static func requests(_ metrics: HubMetrics, node: String, result: String) -> Double {
        for line in metrics.text().split(separator: "\n")
        where line.hasPrefix("enchufe_pull_requests_total{") && line.contains("node=\"\(node)\"") && line.contains("result=\"\(result)\"") {
            return Double(line.split(separator: " ").last!) ?? -1
        }
        return 0
    }
}

extension PullFlows {
    /// The problems of each spec's example when it is put in a flow — a trigger feeding it, a
    /// `store` after it — so the examples the docs show are known to load.
    public static func exampleProblems(_ specs: [NodeSpec], environment: [String: String]) -> [String] {
        let registry = NodeRegistry(CoreNodes.specs + [triggerSpec] + specs)
        return specs.flatMap { spec -> [String] in
            guard let idLine = spec.example.split(separator: "\n").first, idLine.hasPrefix("- id: ") else {
                return ["\(spec.type): the example does not start with '- id: '"]
            }
            let id = idLine.dropFirst("- id: ".count)
            // Whatever the example feeds becomes a store.readings node.
            let targets = spec.example.split(separator: "\n").first { $0.trimmingCharacters(in: .whitespaces).hasPrefix("to: [") }
                .map { line in line.split(separator: "[").last!.dropLast().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } } ?? []
            let sinks = targets.map { "  - id: \($0)\n    type: store.readings" }.joined(separator: "\n")
            let yaml = """
                flow: example
                nodes:
                  - id: trigger
                    type: test.trigger
                    to: [\(id)]
                \(spec.example.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
                \(sinks)
                """
            let (_, diagnostics) = FlowLoader(registry: registry, environment: environment).load(text: yaml, file: "\(spec.type).yaml")
            // Warnings about the store the harness wired in are the harness's, not the example's.
            return diagnostics.filter { $0.severity == .error }.map { "\(spec.type): \($0)" }
        }
    }
}
