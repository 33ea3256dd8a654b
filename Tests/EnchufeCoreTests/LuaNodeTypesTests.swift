import Foundation
import Logging
import Testing

@testable import EnchufeCore

@Suite struct LuaNodeTypesTests {
    func folder(_ files: [String: String]) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("enchufe-lua-types-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for (name, text) in files { try text.write(to: dir.appendingPathComponent(name), atomically: true, encoding: .utf8) }
        return dir.path
    }

    static let good = """
        node = {
          type = "double.it",
          summary = "Doubles every reading",
          doc = "Multiplies each reading's value by `factor`.",
          options = {
            { name = "factor", type = "number", default = 2, doc = "The factor." },
            { name = "token", type = "string", secret = true, doc = "A secret, never printed." },
          },
        }
        function process(msg, options)
          for _, r in ipairs(msg.readings) do r.value = r.value * options.factor end
          return msg
        end
        """

    @Test func aDeclaredTypeValidatesAndRunsInTheSandboxWithItsOptions() async throws {
        let dir = try folder(["double.lua": Self.good])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (specs, problems) = LuaNodeTypes.load(folder: dir, taken: Set(CoreNodes.specs.map(\.type)))
        #expect(problems.isEmpty, "\(problems)")
        let spec = try #require(specs.first)
        #expect(spec.type == "double.it" && spec.kind == .transform && spec.summary == "Doubles every reading")
        #expect(spec.options.map(\.name).prefix(2) == ["factor", "token"] && spec.options[1].secret && spec.options[0].defaultValue == 2)

        var registry = NodeRegistry(CoreNodes.specs)
        registry.register(spec)
        let flow = """
            flow: f
            tenant: t
            nodes:
              - { id: tick, type: schedule, every: 1h, to: [doubled, wrong] }
              - { id: doubled, type: double.it, factor: 3, token: abc-secret, to: [log] }
              - { id: wrong, type: double.it, factor: many, to: [log] }
              - { id: log, type: log }
            """
        let (_, diagnostics) = FlowLoader(registry: registry, environment: [:]).load(text: flow, file: "f.yaml")
        #expect(diagnostics.map(\.description) == ["f.yaml:6:43: error: 'factor' must be a number, not 'many'"], "\(diagnostics)")

        let make = try #require(spec.make)
        let context = NodeBuildContext(
            flow: "f", node: "doubled", tenant: "t", options: NodeOptions(values: ["factor": 3]), connections: [:],
            logger: .init(label: "test"), metrics: HubMetrics())
        guard case .transform(let node) = try make(context) else { Issue.record("not a transform"); return }
        let message = Message(readings: [Reading(series: "s", quantity: "consumption", ts: Date(timeIntervalSince1970: 0), resolution: "PT1H", value: 1.5, unit: "kWh")])
        let store = try SQLiteStore(path: ":memory:")
        let out = try await node.process(message, NodeContext(flow: "f", node: "doubled", tenant: "t", store: store, clock: SystemClock(), logger: .init(label: "test"), metrics: HubMetrics()))
        #expect(out.first?.message.readings.first?.value == 4.5)
    }

    @Test(arguments: [
        ("node = { type = \"x\" ", "bad.lua:1:1: error: lua:"),
        ("node = {\n  type = \"Bad Name\",\n  summary = \"s\" }\nfunction process(msg, options) return msg end", "bad.lua:2:1: error: node.type must be a name"),
        ("node = {\n  type = \"ok.type\",\n  summary = \"s\",\n  options = {\n    { name = \"limit\", type = \"float\", doc = \"d\" },\n  },\n}\nfunction process(msg, options) return msg end", "bad.lua:5:1: error: option 'limit': type 'float' is not one of"),
        ("node = {\n  type = \"ok.type\",\n  summary = \"s\",\n  options = {\n    { name = \"limit\", type = \"number\" },\n  },\n}\nfunction process(msg, options) return msg end", "bad.lua:5:1: error: option 'limit' needs a doc"),
        ("node = {\n  type = \"ok.type\",\n  summary = \"s\",\n}\n", "error: the file does not define function process(msg, options)"),
        ("node = {\n  type = \"lua\",\n  summary = \"s\",\n}\nfunction process(msg, options) return msg end", "bad.lua:2:1: error: node type 'lua' exists already"),
        ("node = {\n  type = \"ok.type\",\n  summary = \"s\",\n  colour = \"red\",\n}\nfunction process(msg, options) return msg end", "bad.lua:4:1: error: node.colour is not a field"),
    ])
    func anInvalidDeclarationIsReportedWithItsFileAndLine(_ text: String, _ expected: String) throws {
        let dir = try folder(["bad.lua": text, "double.lua": Self.good])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (specs, problems) = LuaNodeTypes.load(folder: dir, taken: Set(CoreNodes.specs.map(\.type)))
        #expect(specs.map(\.type) == ["double.it"], "the other plugins still load")
        #expect(problems.count == 1 && problems[0].description.contains(expected), "\(problems)")
        #expect(problems.first?.description.hasPrefix(dir + "/bad.lua:") == true)
    }
}
