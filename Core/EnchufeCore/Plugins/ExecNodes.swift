import Foundation

/// `exec.source`, `exec.transform`, `exec.sink`: a node made by an external program, in any
/// language, that speaks the exec protocol over its stdin and stdout (NDJSON).
enum ExecNodes {
    static let protocolDoc = """
        The program is started with `command` (a list: the program and its arguments; a relative
        path is taken from the flow file's folder) and speaks NDJSON, one JSON object a line:
        - it first writes `{"type":"hello","protocol":1,"kind":"transform","name":"..."}`
          (`kind` optional: source, transform or sink; a wrong protocol or kind stops it);
        - the hub writes `{"type":"message","id":"7","message":{...}}` for each message
          (transform, sink), with `payload`, `topic`, `attributes` and `readings` as in the
          flow;
        - the program answers each id with zero or more `{"type":"emit","id":"7","message":{...}}`
          (transform: the messages that come out of it) and then `{"type":"ack","id":"7"}`, or
          `{"type":"error","id":"7","error":"why","retry":false}` (retried per the node's
          `retry` unless `retry` is false; then to the `errors` wire or the dead letters);
        - a source writes `{"type":"emit","id":"any","message":{...}}` when it has something,
          and the hub answers `{"type":"ack","id":"any"}` once everything derived from it is
          committed, or `{"type":"nack","id":"any","error":"why"}`: only then may the program
          count it as delivered;
        - any side may write `{"type":"log","level":"info","message":"..."}`; stderr lines go to
          the hub's log with the node's id.

        A message is acknowledged upstream only after the program acknowledged it. Each must be
        answered within `timeout`; a program that hangs, ends or writes something else than the
        protocol is stopped (its pending messages fail and are retried) and started again after
        1 s, doubling to at most a minute. The hub sends a transform one message at a time and a
        sink one batch at a time, and reads a source's lines only as fast as the flow takes them:
        nothing is buffered without bound either way.
        """

    enum Key {
        static let command = RequiredOptionKey<[String]>(
            "command", doc: "The program and its arguments.", example: .array(["python3", "plugins/csv_source.py"]))
        static let timeout = OptionKey<Duration>(
            "timeout", default: .seconds(30), doc: "Longest wait for the program's answer to a message (for its hello line: this, but at least 10 s).")
        static let restart = OptionKey<String>(
            "restart", .enumeration(["on-failure", "always"]), default: "on-failure", doc: "Start the program again when it ends with status 0 too.")
        static let batchSize = OptionKey<Int>("batch_size", default: 100, doc: "Most messages sent before waiting for their answers.")
        static let flushInterval = OptionKey<Duration>(
            "flush_interval", default: .seconds(1), doc: "Longest wait for a batch to fill once its first message is in.")
    }

    static func command(_ options: NodeOptions) -> [String] { options[Key.command] ?? [] }

    static func directory(_ options: NodeOptions) -> URL {
        let flowFile = options.locations[Key.command.name]?.file ?? "."
        return URL(fileURLWithPath: flowFile).deletingLastPathComponent()
    }

    static let commonOptions = [Key.command.spec, Key.timeout.spec]

    static func check(_ options: NodeOptions) -> [OptionProblem] {
        command(options).isEmpty ? [OptionProblem(option: "command", "give the program to run: [program, arguments...]")] : []
    }

    static func plugin(_ context: NodeBuildContext, kind: String) -> ExecPlugin {
        ExecPlugin(
            command: command(context.options), directory: directory(context.options), kind: kind,
            timeout: context.options[Key.timeout], logger: context.logger)
    }

    static let specs: [NodeSpec] = [
        NodeSpec(
            type: "exec.source", kind: .source,
            summary: "Messages from an external program (any language) speaking NDJSON on stdout; each acknowledged back once committed",
            doc: protocolDoc + """


                A source program that ends with status 0 is done (unless `restart: always`); any
                other end starts it again with backoff. A program that wants its messages delivered
                waits for their `ack` before it ends.
                """,
            options: commonOptions + [Key.restart.spec],
            takesInput: false,
            example: """
                - id: readings
                  type: exec.source
                  command: [python3, plugins/csv_source.py, exports/meter.csv]
                  to: [store]
                """,
            check: check,
            make: { context in .source(ExecSource(plugin: plugin(context, kind: "source"), restartAlways: context.options[Key.restart] == "always")) }),
        NodeSpec(
            type: "exec.transform", kind: .transform,
            summary: "Each message through an external program (any language) over NDJSON: what it emits goes on",
            doc: protocolDoc,
            options: commonOptions,
            example: """
                - id: enrich
                  type: exec.transform
                  command: [python3, plugins/enrich.py]
                  timeout: 5s
                  to: [store]
                """,
            check: check,
            make: { context in .transform(ExecTransform(plugin: plugin(context, kind: "transform"))) }),
        NodeSpec(
            type: "exec.sink", kind: .sink,
            summary: "Messages handed to an external program (any language) over NDJSON; committed when it acknowledges them",
            doc: protocolDoc,
            options: commonOptions + [Key.batchSize.spec, Key.flushInterval.spec],
            example: """
                - id: legacy
                  type: exec.sink
                  command: [./bin/push-to-erp]
                """,
            check: check,
            make: { context in
                .sink(ExecSink(
                    plugin: plugin(context, kind: "sink"),
                    batching: Batching(size: context.options[Key.batchSize], flushInterval: context.options[Key.flushInterval])))
            }),
    ]
}

struct ExecSource: SourceNode {
    let plugin: ExecPlugin
    let restartAlways: Bool

    func run(_ context: SourceContext) async throws {
        try await plugin.runSource(context, restartAlways: restartAlways)
    }
}

struct ExecTransform: TransformNode {
    let plugin: ExecPlugin

    func process(_ message: Message, _ context: NodeContext) async throws -> [Output] {
        try await plugin.exchange([message])[0].get().map(Output.out)
    }
}

struct ExecSink: SinkNode {
    let plugin: ExecPlugin
    let batching: Batching

    func write(_ batch: [Message], _ context: NodeContext) async throws {
        // A message refused fails the batch: the engine then writes them one at a time, so only it fails.
        for result in try await plugin.exchange(batch) { _ = try result.get() }
    }
}
