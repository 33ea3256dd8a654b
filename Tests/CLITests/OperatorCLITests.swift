import EnchufeCore
import Foundation
import TestSupport
import Testing
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Watching and steering a running `enchufe run`: the status page in a real browser, file reloads,
/// SIGHUP, `enchufe tap`, `enchufe dlq replay`, JSON logs.
extension CLITests {
    static let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// Headless Chromium on `url`, with `arguments` (`--dump-dom`, `--screenshot=...`); its stdout.
    func chromium(_ url: String, _ arguments: [String]) throws -> String {
        guard let path = Self.chromium else {
            throw Failure(description: "no chromium on this machine: scripts/setup-debian --test installs Debian's `chromium`")
        }
        let profile = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: profile) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        // The page refreshes every second: 3 virtual seconds let its first requests answer and draw.
        process.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=\(profile.path)", "--window-size=1400,900",
            "--virtual-time-budget=3000"] + arguments + [url]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = PipeReading.all(out.fileHandleForReading)
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    /// The `data-out` counter drawn for `node` in a dumped page.
    static func drawnOut(_ dom: String, node: String) -> Int? {
        guard let at = dom.range(of: "data-node=\"\(node)\"") else { return nil }
        guard let counter = dom[at.upperBound...].range(of: "data-out=\"") else { return nil }
        return Int(dom[counter.upperBound...].prefix { $0.isNumber })
    }

    @Test func theStatusPageDrawsTheFlowInABrowserWithCountersThatMove() async throws {
        let dir = try projectDirectory(flow: Self.simFlow, named: "sim")
        let hub = try RunningHub(["run", "--http", "127.0.0.1:0"], in: dir)
        defer { hub.terminate() }
        let page = hub.base + "/ui/#sim"

        let first = try chromium(page, ["--dump-dom"])
        #expect(first.contains("data-node=\"households\"") && first.contains("data-node=\"store\""), "the graph of flow sim is not drawn: \(first.prefix(2000))")
        #expect(first.contains("data-from=\"households\" data-to=\"store\""), "the wire is not drawn")
        let before = try #require(Self.drawnOut(first, node: "households"))

        // Wait (by asking the hub, not by sleeping) until the flow has moved on, then look again.
        _ = try await hub.poll("/api/v1/flows") { answer in
            let flows = (try? JSONSerialization.jsonObject(with: Data(answer.body.utf8))) as? [String: Any]
            let nodes = ((flows?["flows"] as? [[String: Any]])?.first?["nodes"] as? [[String: Any]]) ?? []
            let out = nodes.first { $0["id"] as? String == "households" }?["messages_out"] as? Int ?? 0
            return out > before + 2
        }
        let second = try chromium(page, ["--dump-dom"])
        let after = try #require(Self.drawnOut(second, node: "households"))
        #expect(after > before, "the counter drawn did not increase: \(before) then \(after)")

        let output = CLITests.binary.deletingLastPathComponent().appendingPathComponent("test-output")
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let shot = output.appendingPathComponent("status-page.png")
        try? FileManager.default.removeItem(at: shot)
        _ = try chromium(page, ["--screenshot=\(shot.path)"])
        let png = try Data(contentsOf: shot)
        #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]) && png.count > 10_000, "no screenshot at \(shot.path)")
        print("status page screenshot: \(shot.path)")
    }

    @Test func anAlertRaisedByAFlowIsListedOnTheStatusPage() async throws {
        let flow = """
            flow: watch
            tenant: demo
            nodes:
              - id: hook
                type: webhook.in
                path: utilisation
                auth: none
                format: json
                readings: { series: "{payload.border}", quantity: utilisation, ts: "{payload.ts}", value: "{payload.pct}", unit: "%", resolution: PT15M }
                to: [saturated]
              - { id: saturated, type: alert, name: border-saturated, message: "border saturated", quantity: utilisation, above: 90, to: [log] }
              - { id: log, type: log }
            """
        let dir = try projectDirectory(flow: flow, named: "watch")
        let hub = try RunningHub(["run", "--http", "127.0.0.1:0"], in: dir)
        defer { hub.terminate() }
        _ = try await hub.poll("/api/v1/flows") { $0.body.contains("\"watch\"") }
        let status = try await post(hub.base + "/hooks/utilisation", #"{"border":"interconnection:ES>FR","ts":"2026-04-19T08:00:00Z","pct":96}"#)
        #expect(status == 202 || status == 200, "webhook answered \(status)")
        _ = try await hub.poll("/api/v1/alerts") { $0.body.contains("\"raised\"") }
        let dom = try chromium(hub.base + "/ui/#watch", ["--dump-dom"])
        guard let row = dom.range(of: "data-alert=\"border-saturated\"") else {
            Issue.record("the alert is not on the page: \(dom.prefix(3000))")
            return
        }
        let drawn = dom[row.lowerBound...].prefix(600)
        #expect(drawn.contains("raised") && drawn.contains("interconnection:ES&gt;FR utilisation") && drawn.contains("2026-04-19T08:00:00Z"), "\(drawn)")
    }

    static func opsFlow(limit: Int, description: String) -> String {
        """
        flow: ops
        tenant: demo
        description: \(description)
        retry: { attempts: 1 }
        nodes:
          - id: hook
            type: webhook.in
            path: ops
            auth: none
            format: json
            readings: { series: "{payload.cups}", quantity: consumption, ts: "{payload.ts}", value: "{payload.kwh}", unit: kWh }
            to: [check]
          - id: check
            type: lua
            script: |
              function process(msg)
                if msg.payload.kwh > \(limit) then error("implausible: " .. msg.payload.kwh .. " kWh") end
                return msg
              end
            to: [store]
          - { id: store, type: store.readings, flush_interval: 10ms }
        """
    }

    func post(_ url: String, _ body: String) async throws -> Int {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = "POST"
        request.httpBody = Data(body.utf8)
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        let (_, response) = try await URLSession.shared.data(for: request)
        return (response as? HTTPURLResponse)?.statusCode ?? 0
    }

    @Test func aChangedFlowFileIsReloadedInPlaceAndADeadLetterReplayedFromTheCommandLine() async throws {
        let dir = try projectDirectory(flow: Self.opsFlow(limit: 1, description: "first"), named: "ops")
        let hub = try RunningHub(["run", "--http", "127.0.0.1:0", "--log-format", "json"], in: dir)
        defer { hub.terminate() }
        let address = String(hub.base.dropFirst("http://".count))
        let reading = #"{"cups":"ES0031000000000001BJ0F","ts":"2026-06-22T10:00:00Z","kwh":1.5}"#
        #expect(try await post(hub.base + "/hooks/ops", reading) == 202)

        // `enchufe tap` prints what goes through a node, as it happens.
        let tap = Process()
        tap.executableURL = CLITests.binary
        tap.arguments = ["tap", "ops/hook", "--count", "1", "--hub", address]
        let tapOut = Pipe()
        tap.standardOutput = tapOut
        tap.standardError = FileHandle.nullDevice
        try tap.run()
        // It prints what passes once it is subscribed: send until it has printed one and exited.
        var sent = 0
        while tap.isRunning && sent < 200 {
            _ = try await post(hub.base + "/hooks/ops", #"{"cups":"ES0031000000000002BZ0F","ts":"2026-06-22T11:00:00Z","kwh":0.5}"#)
            sent += 1
        }
        tap.waitUntilExit()
        let tapped = String(decoding: PipeReading.all(tapOut.fileHandleForReading), as: UTF8.self)
        #expect(tap.terminationStatus == 0 && tapped.contains("ES0031000000000002BZ0F") && tapped.contains(#""port":"out""#), "\(tapped)")

        let list = try run(["dlq", "list"], in: dir)
        let id = try #require(list.output.split(separator: "\t").first.map(String.init), "\(list.output)")
        #expect(list.output.contains("ops/check") && list.output.contains("implausible: 1.5 kWh"))

        // The file changes: the running hub reloads it (the file is checked twice a second).
        let changed = ContinuousClock.now
        try Self.opsFlow(limit: 10, description: "second").write(to: dir.appendingPathComponent("pipelines/ops.yaml"), atomically: true, encoding: .utf8)
        let flows = try await hub.poll("/api/v1/flows") { $0.body.contains(#""description":"second""#) }
        #expect(flows.body.contains(#""description":"second""#), "the change was not picked up: \(flows.body.prefix(500))")
        print("flow file change in effect after \(ContinuousClock.now - changed)")

        let replay = try run(["dlq", "replay", id, "--hub", address], in: dir)
        #expect(replay.status == 0 && replay.output.contains("replayed into ops/check: committed"), "\(replay.output)")
        let stored = try sqlite(dir.appendingPathComponent("var/enchufe.sqlite").path, "SELECT count(*) FROM readings WHERE series = 'ES0031000000000001BJ0F' AND value = 1.5")
        #expect(stored == "1")
        #expect(try run(["dlq", "replay", id, "--hub", address], in: dir).output.contains("409 Already replayed"))

        // An invalid change is refused and shown; the flow keeps running.
        try "flow: ops\nnodes: [".write(to: dir.appendingPathComponent("pipelines/ops.yaml"), atomically: true, encoding: .utf8)
        let refused = try await hub.poll("/api/v1/flows") { $0.body.contains("reload_error") }
        #expect(refused.body.contains("reload_error") && refused.body.contains("invalid YAML"), "\(refused.body.prefix(800))")
        #expect(try await post(hub.base + "/hooks/ops", reading.replacingOccurrences(of: "10:00", with: "12:00")) == 202)

        // SIGHUP reloads too.
        kill(hub.process.processIdentifier, SIGHUP)
        let hup = try await hub.poll("/healthz") { _ in hub.output.contains("SIGHUP: reloading the flow files") }
        #expect(hup.status == 200 && hub.output.contains("SIGHUP: reloading the flow files"))

        // JSON logs: one object a line; a node's lines carry its flow and node ids.
        #expect(hub.stop() == 0)
        let lines = hub.output.split(separator: "\n").filter { $0.hasPrefix("{") }
        #expect(!lines.isEmpty && lines.allSatisfy { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) != nil })
        #expect(lines.contains { $0.contains(#""flow":"ops""#) && $0.contains(#""node":"check""#) && $0.contains("dead letter") }, "\(hub.output.prefix(2000))")
    }
}

extension CLITests {
    @Test func thePythonCSVSourceStoresEveryRowOnceAndResumesAfterARestart() async throws {
        let dir = try temporaryDirectory()
        let example = CLITests.repository.appendingPathComponent("Examples/exec-csv-source")
        try FileManager.default.copyItem(at: example, to: dir.appendingPathComponent("pipelines"))
        try? FileManager.default.removeItem(at: dir.appendingPathComponent("pipelines/data/meter.csv.state"))
        let rows = try String(contentsOf: dir.appendingPathComponent("pipelines/data/meter.csv"), encoding: .utf8).split(separator: "\n").count - 1
        let db = dir.appendingPathComponent("var/enchufe.sqlite").path

        var hub = try RunningHub(["run", "--http", "127.0.0.1:0"], in: dir)
        defer { hub.terminate() }
        // The program ends once every row is acknowledged: its node shows `stopped`.
        let done = try await hub.poll("/api/v1/flows/meter-csv") { $0.body.contains(#""id":"meter""#) && $0.body.contains(#""status":"stopped""#) }
        #expect(done.body.contains(#""messages_out":\#(rows)"#), "\(done.body)")
        #expect(hub.stop() == 0)
        let stored = try sqlite(db, "SELECT count(*), count(DISTINCT ts), sum(value) FROM readings WHERE series = 'ES0031000000000001BJ0F'").split(separator: "|")
        #expect(stored.count == 3 && stored[0] == "\(rows)" && stored[1] == "\(rows)", "\(stored)")
        #expect(abs((Double(stored.last ?? "") ?? 0) - Self.csvTotal(dir)) < 1e-9, "\(stored)")
        #expect(try String(contentsOf: dir.appendingPathComponent("pipelines/data/meter.csv.state"), encoding: .utf8) == "\(rows)")
        #expect(hub.output.contains("[meter-csv/meter] plugin stderr: csv-source: reading data/meter.csv, 0 row(s) stored before"), "\(hub.output.prefix(3000))")
        #expect(hub.output.contains("plugin: all \(rows) rows stored"))

        // Again: it goes on after the last stored row, so nothing is sent twice.
        hub = try RunningHub(["run", "--http", "127.0.0.1:0"], in: dir)
        let again = try await hub.poll("/api/v1/flows/meter-csv") { $0.body.contains(#""status":"stopped""#) }
        #expect(again.body.contains(#""messages_out":0"#), "\(again.body)")
        #expect(hub.stop() == 0)
        #expect(hub.output.contains("csv-source: reading data/meter.csv, \(rows) row(s) stored before"))
        #expect(try sqlite(db, "SELECT count(*), max(revision) FROM readings") == "\(rows)|1")
    }

    static func csvTotal(_ dir: URL) -> Double {
        let text = (try? String(contentsOf: dir.appendingPathComponent("pipelines/data/meter.csv"), encoding: .utf8)) ?? ""
        return text.split(separator: "\n").dropFirst().compactMap { Double($0.split(separator: ",").last ?? "") }.reduce(0, +)
    }
}

extension CLITests {
    @Test func theExampleLuaNodeTypeIsListedDocumentedAndTestedBesideTheBuiltIns() throws {
        let nodes = try run(["nodes"])
        #expect(nodes.status == 0 && nodes.output.contains("peak.flag") && nodes.output.contains("transform") && nodes.output.contains("tariff.periods"), "\(nodes.output)")
        let schema = try run(["schema"])
        #expect(schema.output.contains("\"peak.flag\""))
        let tests = try run(["test", "--plugins", "plugins", "Examples/lua-node-type"])
        #expect(tests.status == 0 && tests.output.contains("2 passed, 0 failed"), "\(tests.output)")

        // A broken plugin: validate names its file and line, and fails; the rest still loads.
        let dir = try temporaryDirectory()
        try "node = {\n  type = \"broken\",\n  summary = \"s\",\n  options = { { name = \"x\", type = \"float\", doc = \"d\" } },\n}\nfunction process(msg) return msg end\n"
            .write(to: dir.appendingPathComponent("broken.lua"), atomically: true, encoding: .utf8)
        let validate = try run(["validate", "--plugins", dir.path, "pipelines"])
        #expect(validate.status == 1 && validate.output.contains("\(dir.path)/broken.lua:4:1: error: option 'x': type 'float'"), "\(validate.output)")
        #expect(try run(["validate", "--plugins", dir.path, "Examples/lua-node-type"]).output.contains("unknown node type 'peak.flag'"))
    }
}

extension CLITests {
    @Test func anInstanceHasAHeartbeatAndASecondOneOnTheSameSQLiteFileIsRefused() async throws {
        let dir = try projectDirectory(flow: Self.simFlow, named: "sim")
        let hub = try RunningHub(["run", "--http", "127.0.0.1:0", "--instance", "first"], in: dir)
        defer { hub.terminate() }
        let cluster = try await hub.poll("/api/v1/cluster") { $0.body.contains(#""id":"first""#) && $0.body.contains(#""http":"127.0.0.1:"#) }
        let body = try JSONSerialization.jsonObject(with: Data(cluster.body.utf8)) as? [String: Any]
        let instances = body?["instances"] as? [[String: Any]] ?? []
        #expect(body?["instance"] as? String == "first" && instances.count == 1, "\(cluster.body)")
        #expect(instances.first?["alive"] as? Bool == true && instances.first?["this"] as? Bool == true)
        #expect(instances.first?["http"] as? String == String(hub.base.dropFirst("http://".count)))

        let slash = try run(["run", "--http", "127.0.0.1:0", "--instance", "a/b"], in: dir)
        #expect(slash.status != 0 && slash.output.contains("--instance 'a/b': use 1 to 64 letters, digits"), "\(slash.output)")
        let second = try run(["run", "--http", "127.0.0.1:0", "--instance", "second"], in: dir)
        #expect(second.status != 0 && second.output.contains("in use by another enchufe run (instance first)") && second.output.contains("use PostgreSQL"), "\(second.output)")

        #expect(hub.stop() == 0)
        #expect(try sqlite(dir.appendingPathComponent("var/enchufe.sqlite").path, "SELECT count(*) FROM instances") == "0", "a clean stop takes the instance out")
        // Once the first has stopped, another may run on the file.
        let next = try RunningHub(["run", "--http", "127.0.0.1:0", "--instance", "second"], in: dir)
        defer { next.terminate() }
        #expect(try await next.poll("/api/v1/cluster") { $0.body.contains(#""id":"second""#) }.body.contains(#""this":true"#))
        #expect(next.stop() == 0)
    }
}
