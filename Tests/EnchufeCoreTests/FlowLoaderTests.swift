import EnchufeCore
import Foundation
import Testing

@Suite struct FlowLoaderTests {
    let registry = NodeRegistry(CoreNodes.specs)

    func load(_ text: String, env: [String: String] = [:], file: String = "flows/test.yaml") -> (FlowDefinition?, [Diagnostic]) {
        FlowLoader(registry: registry, environment: env).load(text: text, file: file)
    }

    func messages(_ text: String, env: [String: String] = [:]) -> [String] {
        load(text, env: env).1.map(\.description)
    }

    @Test func aValidFlowLoadsWithDefaultsAndWires() throws {
        let (flow, diagnostics) = load("""
            flow: prices
            tenant: sol
            nodes:
              - id: tick
                type: schedule
                every: 15m
                to: [store, debug]
                errors: debug
              - id: store
                type: store.readings
              - id: debug
                type: log
            """)
        #expect(diagnostics.isEmpty)
        let f = try #require(flow)
        #expect(f.id == "prices")
        #expect(f.tenant == "sol")
        let tick = try #require(f.node("tick"))
        #expect(tick.options.string("timezone") == "Europe/Madrid")
        #expect(tick.options.bool("run_at_start") == true)
        #expect(tick.wires["out"]?.map(\.node) == ["store", "debug"])
        #expect(tick.wires["errors"]?.map(\.node) == ["debug"])
        #expect(f.node("store")?.options.int("batch_size") == 500)
        #expect(tick.location == SourceLocation(file: "flows/test.yaml", line: 4, column: 9))
    }

    @Test func threeDifferentMistakesAreEachReportedAtTheirPosition() {
        let text = """
            flow: bad
            nodes:
              - id: tick
                type: schedule
                every: 15m
                timezon: Europe/Madrid
                to: [stor]
              - id: store
                type: store.readings
                batch_size: many
            """
        #expect(messages(text) == [
            "flows/test.yaml:6:5: error: unknown option 'timezon' for node 'tick' (schedule) (did you mean 'timezone'?)",
            "flows/test.yaml:7:10: error: 'tick' is wired to 'stor', which is not a node of this flow (did you mean 'store'?)",
            "flows/test.yaml:10:17: error: 'batch_size' must be a whole number, not 'many'",
        ])
    }

    @Test func unknownTypesAndTopLevelKeysSuggestTheClosestName() {
        let m = messages("""
            flow: x
            node:
              - id: a
            """)
        #expect(m.contains("flows/test.yaml:2:1: error: unknown key 'node' in flow file (did you mean 'nodes'?)"))
        #expect(m.contains("flows/test.yaml:1:1: error: the flow has no 'nodes' list"))
        let t = messages("""
            flow: x
            nodes:
              - id: a
                type: schedul
                every: 1m
            """)
        #expect(t == ["flows/test.yaml:4:11: error: unknown node type 'schedul' (did you mean 'schedule'?)"])
    }

    @Test func missingRequiredOptionsWrongTypesAndBadEnumsAreReported() {
        let m = messages("""
            flow: x
            nodes:
              - id: a
                type: schedule
                every: soon
                run_at_start: maybe
                to: [l]
              - id: l
                type: log
                level: loud
            """)
        #expect(m == [
            "flows/test.yaml:5:12: error: 'every': 'soon' is not a duration (write e.g. 500ms, 30s, 15m, 1h or 1d)",
            "flows/test.yaml:6:19: error: 'run_at_start' must be true or false, not 'maybe'",
            "flows/test.yaml:10:12: error: 'level' must be one of trace, debug, info, notice, warning, error, not 'loud'",
        ])
        let cross = messages("""
            flow: x
            nodes:
              - id: a
                type: schedule
            """)
        #expect(cross == [#"flows/test.yaml:3:5: error: node 'a' (schedule): needs 'cron' (e.g. "30 20 * * *") or 'every' (e.g. 15m)"#])
    }

    @Test func aDurationPastOneHundredYearsIsReportedNotOverflowed() throws {
        // A fuzz finding: `every: 999999999999999999m` overflowed the multiplication and stopped the hub.
        for absurd in ["999999999999999999m", "9999999999999999m", "153722867280912931d", "99999999999999999999999s", "36500d1ms", "20000d20000d"] {
            let m = messages("flow: x\nnodes:\n  - id: a\n    type: schedule\n    every: \(absurd)\n    to: [l]\n  - id: l\n    type: log\n")
            #expect(m == ["flows/test.yaml:5:12: error: 'every': '\(absurd)' is longer than the longest duration a flow may write (36500d, 100 years)"])
        }
        #expect(try DurationText.parse("36500d") == DurationText.longest)
        #expect(try DurationText.parse("1h30m") == .seconds(5400))
        #expect(throws: DurationText.Invalid.self) { try DurationText.parse("٣m") }
        // A reading's resolution, read from outside: an overflow is unreadable, as a sign is.
        #expect(ISODuration.seconds("PT15M") == 900 && ISODuration.seconds("P1D") == 86_400 && ISODuration.seconds("PT0S") == 0)
        for unreadable in ["P99999999999999999D", "PT9999999999999999999H", "PT153722867280912931M", "PT-15M", "P+1D", "P36501D", "PTM", "P1M", "PT1.5H"] {
            #expect(ISODuration.seconds(unreadable) == nil, "\(unreadable)")
        }
    }

    @Test func invalidCronExpressionsAndTimeZonesAreReported() {
        let m = messages("""
            flow: x
            nodes:
              - id: a
                type: schedule
                cron: "0 25 * * *"
                timezone: Europe/Madird
            """)
        #expect(m == [
            "flows/test.yaml:5:11: error: 'cron': hour field: '25' is not in 0-23",
            "flows/test.yaml:6:15: error: 'timezone': unknown time zone 'Europe/Madird' (did you mean 'Europe/Madrid'?)",
        ])
        #expect(messages("flow: x\nnodes:\n  - id: a\n    type: schedule\n    cron: \"* * *\"\n").first?.contains("has 3 fields; a cron expression has 5") == true)
    }

    @Test func duplicateIdsAndCyclesAreReported() {
        let m = messages("""
            flow: x
            nodes:
              - id: tick
                type: schedule
                every: 1m
                to: [a]
              - id: a
                type: log
              - id: a
                type: log
            """)
        #expect(m.contains("flows/test.yaml:9:9: error: duplicate node id 'a' (first used at line 7)"))

        let registry = NodeRegistry(CoreNodes.specs + [passThroughSpec])
        let (_, cycle) = FlowLoader(registry: registry, environment: [:]).load(text: """
            flow: x
            nodes:
              - id: tick
                type: schedule
                every: 1m
                to: [a]
              - id: a
                type: pass
                to: [b]
              - id: b
                type: pass
                to: [a]
            """, file: "c.yaml")
        #expect(cycle.map(\.description) == ["c.yaml:12:10: error: wiring 'b' to 'a' makes a cycle: a → b → a"])
    }

    @Test func aNodeNothingFeedsIsReported() {
        #expect(messages("""
            flow: x
            nodes:
              - id: tick
                type: schedule
                every: 1m
              - id: store
                type: store.readings
            """) == ["flows/test.yaml:6:9: error: node 'store' (store.readings) takes input, but no node is wired to it (add 'store' to another node's 'to')"])
    }

    @Test func aSinkCannotBeWiredOnwardsAndASourceCannotBeFed() {
        let m = messages("""
            flow: x
            nodes:
              - id: t1
                type: schedule
                every: 1m
                to: [t2]
              - id: t2
                type: schedule
                every: 1m
                to: [l]
              - id: l
                type: log
                to: [t1]
            """)
        #expect(m.contains("flows/test.yaml:6:10: error: 't1' is wired to 't2', a schedule node, which takes no input"))
        #expect(m.contains("flows/test.yaml:13:5: error: node 'l' is a sink (log): it has no output to wire with 'to'"))
    }

    @Test func yamlSyntaxErrorsAreReportedWithTheirPosition() {
        let m = messages("flow: x\nnodes:\n  - id: a\n    type: log\n   bad: [\n")
        #expect(m.count == 1)
        #expect(m[0].hasPrefix("flows/test.yaml:5:4: error: invalid YAML:"))
        let dup = messages("flow: x\nflow: y\nnodes: []\n")
        #expect(dup.first?.contains("duplicate key 'flow'") == true)
    }

    @Test func environmentAndFileValuesAreSubstituted() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("enchufe-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try "30 6 * * *\n".write(to: dir.appendingPathComponent("cron.txt"), atomically: true, encoding: .utf8)
        let file = dir.appendingPathComponent("flow.yaml").path
        let (flow, diagnostics) = FlowLoader(registry: registry, environment: ["ZONE": "Atlantic/Canary", "SIZE": "250"]).load(text: """
            flow: x
            nodes:
              - id: a
                type: schedule
                cron: "${file:cron.txt}"
                timezone: ${env:ZONE}
                payload: "cost $${not.substituted} in ${env:CURRENCY:-EUR}"
                to: [s]
              - id: s
                type: store.readings
                batch_size: ${env:SIZE}
            """, file: file)
        #expect(diagnostics.isEmpty)
        let a = try #require(flow?.node("a"))
        #expect(a.options.string("cron") == "30 6 * * *")
        #expect(a.options.string("timezone") == "Atlantic/Canary")
        #expect(a.options.string("payload") == "cost ${not.substituted} in EUR")
        #expect(flow?.node("s")?.options.int("batch_size") == 250)
    }

    @Test func aMissingVariableOrFileIsAnErrorNamingIt() {
        let m = messages("""
            flow: x
            nodes:
              - id: a
                type: schedule
                every: ${env:EVERY}
                payload: ${file:/nonexistent/enchufe.txt}
                timezone: ${oops:X}
            """)
        #expect(m == [
            "flows/test.yaml:5:12: error: environment variable 'EVERY' is not set (write ${env:EVERY:-default} to give a default) in 'every'",
            "flows/test.yaml:6:14: error: cannot read file '/nonexistent/enchufe.txt' named by ${file:/nonexistent/enchufe.txt} in 'payload'",
            "flows/test.yaml:7:15: error: unknown substitution '${oops:...}' (use ${env:NAME} or ${file:PATH}) in 'timezone'",
        ])
    }

    @Test func secretValuesAreNeverPrintedAndAreCollectedForRedaction() throws {
        let registry = NodeRegistry(CoreNodes.specs + [secretSpec])
        let loader = FlowLoader(registry: registry, environment: ["TOKEN": "tok-3f9a-very-secret"])
        let (bad, diagnostics) = loader.load(text: """
            flow: x
            nodes:
              - id: a
                type: secretive
                token: ${env:TOKEN}
                retries: tok-3f9a-very-secret
                mode: tok-3f9a-very-secret
            """, file: "s.yaml")
        #expect(bad?.secretValues == ["tok-3f9a-very-secret"])
        #expect(diagnostics.count == 2)
        for d in diagnostics { #expect(!d.description.contains("tok-3f9a")) }
        #expect(diagnostics.map(\.description).contains("s.yaml:6:14: error: 'retries' must be a whole number, not the value"))

        let redactor = Redactor(secrets: bad?.secretValues ?? [])
        #expect(redactor.redact("401 for token=tok-3f9a-very-secret") == "401 for token=***")
        #expect("\(Secret("tok-3f9a-very-secret"))" == "***")
    }

    @Test func flowFilesAreFoundInFoldersLeavingOutTests() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("enchufe-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("sub"), withIntermediateDirectories: true)
        for name in ["a.yaml", "sub/b.yml", "a.test.yaml", "notes.txt"] {
            try "".write(to: dir.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        let files = try FlowLoader.flowFiles(in: [dir.path])
        #expect(files.map { URL(fileURLWithPath: $0).lastPathComponent } == ["a.yaml", "b.yml"])
        #expect(throws: FlowLoader.FlowFilesError.self) { try FlowLoader.flowFiles(in: ["/nonexistent/flows"]) }
    }

    @Test func aFlowIdUsedTwiceAcrossFilesIsReported() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("enchufe-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let text = "flow: same\nnodes:\n  - id: t\n    type: schedule\n    every: 1m\n"
        try text.write(to: dir.appendingPathComponent("a.yaml"), atomically: true, encoding: .utf8)
        try text.write(to: dir.appendingPathComponent("b.yaml"), atomically: true, encoding: .utf8)
        let set = try FlowLoader(registry: registry, environment: [:]).load(paths: [dir.path])
        #expect(set.flows.count == 1)
        #expect(set.errors.count == 1)
        #expect(set.errors.first?.message.contains("flow id 'same' is already used by") == true)
    }
}

/// Test-only node types.
let passThroughSpec = NodeSpec(
    type: "pass", kind: .transform, summary: "passes messages on", options: [], example: "",
    make: { _ in .transform(PassThrough()) })

struct PassThrough: TransformNode {
    func process(_ message: Message, _ context: NodeContext) async throws -> [Output] { [.out(message)] }
}

let secretSpec = NodeSpec(
    type: "secretive", kind: .source, summary: "has a secret", options: [
        OptionSpec("token", .string, required: true, secret: true, doc: "a token"),
        OptionSpec("retries", .integer, secret: true, doc: "secret for the test"),
        OptionSpec("mode", .enumeration(["a", "b"]), secret: true, doc: "secret for the test"),
    ], example: "", make: nil)
