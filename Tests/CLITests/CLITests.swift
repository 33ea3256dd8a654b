import EnchufeCore
import Foundation
import TestSupport
import Testing
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The `enchufe` executable, run as a user runs it.
@Suite(.serialized) struct CLITests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static var binary: URL {
        if let path = ProcessInfo.processInfo.environment["ENCHUFE_BIN"] { return URL(fileURLWithPath: path) }
        return URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("enchufe")
    }

    struct Result {
        var status: Int32
        var output: String
    }

    func run(_ arguments: [String], in directory: URL = repository) throws -> Result {
        let process = Process()
        process.executableURL = Self.binary
        process.arguments = arguments
        process.currentDirectoryURL = directory
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = PipeReading.all(pipe.fileHandleForReading)
        process.waitUntilExit()
        return Result(status: process.terminationStatus, output: String(decoding: data, as: UTF8.self))
    }

    /// A new working directory holding `pipelines/NAME.yaml` with `yaml`, for `enchufe run`.
    func projectDirectory(flow yaml: String, named name: String) throws -> URL {
        let dir = try temporaryDirectory()
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("pipelines"), withIntermediateDirectories: true)
        try yaml.write(to: dir.appendingPathComponent("pipelines/\(name).yaml"), atomically: true, encoding: .utf8)
        return dir
    }

    func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("enchufe-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func everyDemoFlowIsValid() throws {
        let result = try run(["validate", "pipelines"])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("flow(s) valid"))
    }

    @Test func aFileWithThreeMistakesGivesThreePositionedErrorsAndExit1() throws {
        let dir = try temporaryDirectory()
        try """
            flow: three-mistakes
            nodes:
              - id: tick
                type: schedule
                every: 15m
                timezon: Europe/Madrid
                to: [store, log]
              - id: store
                type: store.readngs
              - id: log
                type: log
                level: loud
            """.write(to: dir.appendingPathComponent("bad.yaml"), atomically: true, encoding: .utf8)
        let result = try run(["validate", "bad.yaml"], in: dir)
        #expect(result.status == 1)
        let errors = result.output.split(separator: "\n").filter { $0.contains(": error: ") }
        #expect(errors == [
            "bad.yaml:6:5: error: unknown option 'timezon' for node 'tick' (schedule) (did you mean 'timezone'?)",
            "bad.yaml:9:11: error: unknown node type 'store.readngs' (did you mean 'store.readings'?)",
            "bad.yaml:12:12: error: 'level' must be one of trace, debug, info, notice, warning, error, not 'loud'",
        ])
    }

    @Test func referenceCommandsComeFromTheNodeSpecs() throws {
        let nodes = try run(["nodes"])
        #expect(nodes.status == 0)
        for type in ["schedule", "simulate.community", "store.readings", "log"] { #expect(nodes.output.contains(type)) }
        let schema = try run(["schema"])
        let json = try JSONSerialization.jsonObject(with: Data(schema.output.utf8)) as? [String: Any]
        let properties = json?["properties"] as? [String: Any]
        let items = (properties?["nodes"] as? [String: Any])?["items"] as? [String: Any]
        let connections = (properties?["connections"] as? [String: Any])?["additionalProperties"] as? [String: Any]
        let listed = try JSONSerialization.jsonObject(with: Data(try run(["nodes", "--json"]).output.utf8)) as? [Any]
        let inSchema = ((items?["oneOf"] as? [Any])?.count ?? 0) + ((connections?["oneOf"] as? [Any])?.count ?? 0)
        #expect(inSchema == listed?.count, "node and connection types in the schema, against `nodes --json`")
        #expect(((connections?["oneOf"] as? [Any])?.count ?? 0) >= 1, "mqtt.broker is a connection type")
        #expect((listed?.count ?? 0) > 4)
        let dir = try temporaryDirectory()
        let docs = try run(["docs", "--out", dir.path])
        #expect(docs.status == 0)
        let page = try String(contentsOf: dir.appendingPathComponent("schedule.md"), encoding: .utf8)
        #expect(page.contains("| `cron` |"))
        #expect(page.contains("clocks go forward"))
    }

    @Test func runStoresSimulatedReadingsServesMetricsAndStopsCleanlyOnSIGTERM() async throws {
        let dir = try projectDirectory(flow: Self.simFlow, named: "sim")
        let hub = try RunningHub(["run", "--http", "127.0.0.1:0"], in: dir)
        defer { hub.terminate() }
        let base = hub.base
        #expect(try await get("\(base)/healthz").body.contains("ok"))

        // Poll the metrics until readings were stored (each poll is a real request, not a sleep).
        let metrics = try await hub.metrics(until: { Self.inserted($0) > 0 })
        #expect(Self.inserted(metrics) > 0, "no readings stored: \(metrics)")
        #expect(metrics.contains(#"enchufe_messages_in_total{flow="sim",node="store",type="store.readings"}"#))
        #expect(metrics.contains(#"enchufe_messages_out_total{flow="sim",node="households",type="simulate.community"}"#))

        let started = ContinuousClock.now
        #expect(hub.stop() == 0)
        #expect(ContinuousClock.now - started < .seconds(5))

        // Nothing acknowledged that is not stored: the checkpoint never runs ahead of the readings.
        let db = dir.appendingPathComponent("var/enchufe.sqlite").path
        let stored = try sqlite(db, "SELECT count(*), max(ts) FROM readings WHERE tenant = 'demo' AND quantity = 'consumption'")
        let parts = stored.split(separator: "|")
        #expect((Int(parts[0]) ?? 0) > 0)
        let checkpoint = try sqlite(db, "SELECT value FROM checkpoints WHERE flow = 'sim' AND node = 'households'")
        let next = try JSONSerialization.jsonObject(with: Data(checkpoint.utf8)) as? [String: Any]
        let nextTs = ISO8601DateFormatter().date(from: next?["next"] as? String ?? "")
        let maxStored = Date(timeIntervalSince1970: (Double(parts[1]) ?? 0) / 1000)
        #expect(nextTs != nil)
        if let nextTs { #expect(nextTs <= maxStored.addingTimeInterval(900), "checkpoint \(nextTs) is ahead of the stored readings (\(maxStored))") }
    }

    static let simFlow = """
        flow: sim
        tenant: demo
        nodes:
          - { id: households, type: simulate.community, households: 5, every: 50ms, seed: 3, to: [store] }
          - { id: store, type: store.readings, flush_interval: 100ms }
        """

    /// Readings the `sim` flow's store node inserted, from the metrics text.
    static func inserted(_ metrics: String) -> Double {
        let prefix = #"enchufe_readings_stored_total{flow="sim",node="store",result="inserted"} "#
        return metrics.split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { Double($0.dropFirst(prefix.count)) } ?? 0
    }

    func sqlite(_ path: String, _ sql: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
        process.arguments = [path, sql]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = PipeReading.all(pipe.fileHandleForReading)
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

extension CLITests {
    struct Failure: Error, CustomStringConvertible { var description: String }
}

extension RunningHub {
    /// The `enchufe` built beside these tests, as a child process.
    convenience init(_ arguments: [String], in directory: URL, environment: [String: String] = [:]) throws {
        try self.init(binary: CLITests.binary, arguments, in: directory, environment: environment)
    }
}
