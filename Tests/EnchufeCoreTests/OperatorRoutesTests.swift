import EnchufeCore
import Foundation
import Testing
import TestSupport

@Suite struct OperatorRoutesTests {
    static let cups = "ES0031000000000001BJ0F"
    static let secret = "tap-secret-key-123"
    /// Readings pushed in are checked for plausibility (at most `limit` kWh an hour), pseudonymized
    /// under a secret key, and stored.
    static func flow(limit: Int = 1, description: String = "checked and pseudonymized") -> String {
        """
        flow: ops
        tenant: a
        description: \(description)
        retry: { attempts: 1 }
        nodes:
          - id: hook
            type: webhook.in
            path: ops
            format: json
            readings: { series: "{payload.cups}", quantity: consumption, ts: "{payload.ts}", value: "{payload.kwh}", unit: kWh }
            to: [check]
          - id: check
            type: lua
            script: |
              function process(msg)
                if msg.payload.kwh > \(limit) then error("implausible: " .. msg.payload.kwh .. " kWh in an hour") end
                return msg
              end
            to: [anonymous]
          - { id: anonymous, type: pseudonymize, key: \(secret), to: [store] }
          - { id: store, type: store.readings, flush_interval: 10ms }
        """
    }

    func body(_ hour: Int, kwh: Double = 0.5, note: String = "") -> String {
        #"{"cups":"\#(Self.cups)","ts":"2026-06-22T\#(String(format: "%02d", hour)):00:00Z","kwh":\#(kwh),"note":"\#(note)"}"#
    }

    func node(_ flows: JSONValue?, _ id: String) -> JSONValue? {
        flows?["flows"]?.arrayValue?.first { $0["id"]?.stringValue == "ops" }?["nodes"]?.arrayValue?.first { $0["id"]?.stringValue == id }
    }

    /// A folder with the flow file, and a loader of it (what `enchufe run` reloads from).
    func flowFolder(_ text: String) throws -> (URL, @Sendable () throws -> FlowSet) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("enchufe-ops-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try text.write(to: dir.appendingPathComponent("ops.yaml"), atomically: true, encoding: .utf8)
        let path = dir.path
        return (dir, { try FlowLoader(registry: NodeRegistry(CoreNodes.specs), environment: [:]).load(paths: [path]) })
    }

    @Test func flowsShowTheirNodesAndADeadLetterIsReplayedIntoTheNodeThatFailedIt() async throws {
        let store = try SQLiteStore(path: ":memory:")
        try await store.migrate()
        let (_, ingest) = try await APIKeys.create(tenant: "a", scopes: ["ingest"], name: "utility", at: Date(), store: store)
        let (_, admin) = try await APIKeys.create(tenant: "a", scopes: ["admin"], name: "ops", at: Date(), store: store)
        let (_, otherAdmin) = try await APIKeys.create(tenant: "b", scopes: ["admin"], name: "b", at: Date(), store: store)
        let (dir, load) = try flowFolder(Self.flow())
        defer { try? FileManager.default.removeItem(at: dir) }
        let server = try await APIServer.start(store: store, flowYAML: [Self.flow()], load: load)
        defer { server.stop() }

        // 1.5 kWh is over the limit: a dead letter of `check` (durable, so the webhook says 202).
        #expect(try await server.send("POST", "/hooks/ops", key: ingest, json: body(9, kwh: 1.5, note: "says \(Self.secret)")).status == 202)
        #expect(try await server.send("POST", "/hooks/ops", key: ingest, json: body(10)).status == 202)
        let flows = try JSONValue.parse(try await server.send("GET", "/api/v1/flows", key: nil).body)
        let ops = flows["flows"]?.arrayValue?.first { $0["id"]?.stringValue == "ops" }
        #expect(ops?["description"]?.stringValue == "checked and pseudonymized" && ops?["tenant"]?.stringValue == "a")
        #expect(ops?["nodes"]?.arrayValue?.map { $0["id"]?.stringValue ?? "" } == ["hook", "check", "anonymous", "store"])
        #expect(ops?["wires"]?.arrayValue?.contains { $0["from"]?.stringValue == "hook" && $0["to"]?.stringValue == "check" } == true)
        #expect(node(flows, "hook")?["messages_out"]?.intValue == 2 && node(flows, "hook")?["kind"]?.stringValue == "source")
        let check = node(flows, "check")
        #expect(check?["messages_in"]?.intValue == 2 && check?["errors"]?.intValue == 1 && check?["dead_letters"]?.intValue == 1)
        #expect(check?["last_error"]?["message"]?.stringValue?.contains("implausible: 1.5 kWh") == true, "\(String(describing: check))")
        #expect(check?["queue_size"]?.intValue == 1024 && check?["queue_depth"]?.intValue == 0)

        // Another tenant's admin sees none of it; an ingest key is not an operator.
        #expect(try JSONValue.parse(try await server.send("GET", "/api/v1/flows", key: otherAdmin).body)["flows"]?.arrayValue?.isEmpty == true)
        #expect(try await server.send("GET", "/api/v1/flows/ops", key: otherAdmin).status == 404)
        #expect(try await server.send("GET", "/api/v1/flows/ops", key: ingest).status == 403)
        #expect(try await server.send("GET", "/api/v1/flows/ops", key: admin).status == 200)

        let letters = try JSONValue.parse(try await server.send("GET", "/api/v1/dead-letters", key: admin).body)["dead_letters"]?.arrayValue ?? []
        #expect(letters.count == 1 && letters.first?["node"]?.stringValue == "check")
        let id = letters.first?["id"]?.intValue ?? -1
        let shown = try await server.send("GET", "/api/v1/dead-letters/\(id)", key: admin).body
        #expect(shown.contains("says ***") && !shown.contains(Self.secret), "a secret in a dead letter's message is not shown: \(shown)")
        #expect(try await server.send("GET", "/api/v1/dead-letters/\(id)", key: otherAdmin).status == 404)
        #expect(try await server.send("POST", "/api/v1/dead-letters/\(id)/replay", key: otherAdmin).status == 404)

        // The flow is fixed (a higher limit) and reloaded; the replay goes through `check` and is stored.
        try Self.flow(limit: 10).write(to: dir.appendingPathComponent("ops.yaml"), atomically: true, encoding: .utf8)
        let reload = try JSONValue.parse(try await server.send("POST", "/api/v1/flows/reload", key: admin).body)
        #expect(reload["restarted"] == ["ops"], "\(reload)")
        // Another tenant's admin may reload the files too, and is shown nothing of this tenant's flows.
        try Self.flow(limit: 10, description: "again").write(to: dir.appendingPathComponent("ops.yaml"), atomically: true, encoding: .utf8)
        let seenByB = try await server.send("POST", "/api/v1/flows/reload", key: otherAdmin).body
        #expect(!seenByB.contains("ops") && seenByB.contains("\"restarted\":[]"), "\(seenByB)")
        let replay = try await server.send("POST", "/api/v1/dead-letters/\(id)/replay", key: admin)
        #expect(replay.status == 200 && replay.body.contains("committed"), "\(replay.body)")
        let stored = try await store.readings(ReadingQuery(tenant: "a"))
        #expect(stored.count == 2 && stored.allSatisfy { $0.reading.series != Self.cups && $0.reading.series.count == Self.cups.count })
        #expect(stored.map(\.reading.value).sorted() == [0.5, 1.5])
        #expect(try await store.deadLetter(id: Int64(id))?.replayedAt != nil)
        #expect(try await store.deadLetters(tenant: "a", limit: 10).count == 1, "replayed, not dead-lettered again")
        #expect(try await server.send("POST", "/api/v1/dead-letters/\(id)/replay", key: admin).status == 409)
        let after = try JSONValue.parse(try await server.send("GET", "/api/v1/flows", key: nil).body)
        #expect(node(after, "check")?["messages_in"]?.intValue == 1 && node(after, "check")?["errors"]?.intValue == 0, "the restarted flow counts afresh")
        #expect(try await server.send("GET", "/api/v1/dead-letters/x", key: admin).status == 400)
        #expect(try JSONValue.parse(try await server.send("DELETE", "/api/v1/dead-letters", key: otherAdmin).body)["deleted"]?.intValue == 0)
        #expect(try await store.deadLetters(tenant: "a", limit: 10).count == 1)
    }

    @Test func aReloadRestartsChangedFlowsOnlyKeepsAFlowWhoseChangeIsInvalidAndLosesNoAcceptedReading() async throws {
        let store = try SQLiteStore(path: ":memory:")
        try await store.migrate()
        let (_, ingest) = try await APIKeys.create(tenant: "a", scopes: ["ingest"], name: "utility", at: Date(), store: store)
        let (dir, load) = try flowFolder(Self.flow(limit: 100))
        defer { try? FileManager.default.removeItem(at: dir) }
        let other = "flow: other\ntenant: a\nnodes:\n  - { id: tick, type: schedule, every: 1h, to: [log] }\n  - { id: log, type: log }\n"
        try other.write(to: dir.appendingPathComponent("other.yaml"), atomically: true, encoding: .utf8)
        let initial = try load()
        #expect(initial.errors.isEmpty)
        let server = try await APIServer.start(store: store, flowYAML: [], load: load)
        defer { server.stop() }
        var report = try JSONValue.parse(try await server.send("POST", "/api/v1/flows/reload", key: nil).body)
        #expect(report["started"] == ["ops", "other"], "\(report)")

        // Readings keep coming while `ops` is changed and restarted: every one answered 202 is stored.
        let posting = Task {
            var accepted = 0
            for hour in 0..<400 {
                let ts = Date(timeIntervalSince1970: 1_780_000_000 + Double(hour) * 3600)
                let body = #"{"cups":"\#(Self.cups)","ts":"\#(ISO8601.string(ts))","kwh":\#(hour % 7)}"#
                if (try? await server.send("POST", "/hooks/ops", key: ingest, json: body))?.status == 202 { accepted += 1 }
            }
            return accepted
        }
        try Self.flow(limit: 100, description: "changed").write(to: dir.appendingPathComponent("ops.yaml"), atomically: true, encoding: .utf8)
        report = try JSONValue.parse(try await server.send("POST", "/api/v1/flows/reload", key: nil).body)
        #expect(report["restarted"] == ["ops"] && report["unchanged"] == ["other"], "\(report)")
        let accepted = await posting.value
        #expect(accepted > 0)
        #expect(try await store.readings(ReadingQuery(tenant: "a")).count == accepted, "a reading answered 202 is stored, whatever the reload did")

        // An invalid change: the flow keeps running as it was, and the API says why.
        try "flow: ops\ntenant: a\nnodes: [".write(to: dir.appendingPathComponent("ops.yaml"), atomically: true, encoding: .utf8)
        report = try JSONValue.parse(try await server.send("POST", "/api/v1/flows/reload", key: nil).body)
        #expect(report["restarted"]?.arrayValue?.isEmpty == true && report["refused"]?["ops"]?.arrayValue?.first?.stringValue?.contains("ops.yaml:4:1: error: invalid YAML") == true, "\(report)")
        let flows = try JSONValue.parse(try await server.send("GET", "/api/v1/flows", key: nil).body)
        let ops = flows["flows"]?.arrayValue?.first { $0["id"]?.stringValue == "ops" }
        #expect(ops?["description"]?.stringValue == "changed" && ops?["reload_error"]?.arrayValue?.isEmpty == false, "\(flows)")
        #expect(try await server.send("POST", "/hooks/ops", key: ingest, json: body(3)).status == 202, "the old flow still takes readings")

        // A flow whose file is gone stops; a new file starts its flow.
        try FileManager.default.removeItem(at: dir.appendingPathComponent("other.yaml"))
        try other.replacingOccurrences(of: "flow: other", with: "flow: third").write(to: dir.appendingPathComponent("third.yaml"), atomically: true, encoding: .utf8)
        report = try JSONValue.parse(try await server.send("POST", "/api/v1/flows/reload", key: nil).body)
        #expect(report["stopped"] == ["other"] && report["started"] == ["third"], "\(report)")
        let ids = try JSONValue.parse(try await server.send("GET", "/api/v1/flows", key: nil).body)["flows"]?.arrayValue?.compactMap { $0["id"]?.stringValue }
        #expect(ids?.sorted() == ["ops", "third"])
    }

    @Test func withoutLoopbackTheOperatorRoutesNeedAnAdminKey() async throws {
        let store = try SQLiteStore(path: ":memory:")
        try await store.migrate()
        let (_, admin) = try await APIKeys.create(tenant: "a", scopes: ["admin"], name: "ops", at: Date(), store: store)
        let server = try await APIServer.start(store: store, flowYAML: [Self.flow()], host: "0.0.0.0")
        defer { server.stop() }
        for path in ["/api/v1/flows", "/api/v1/dead-letters", "/api/v1/tap?flow=ops&node=hook"] {
            #expect(try await server.send("GET", path, key: nil).status == 401, "\(path)")
        }
        #expect(try await server.send("GET", "/api/v1/flows", key: admin).status == 200)
        // The page itself carries no data: it is served, and asks for the key.
        let page = try await server.get("/ui/", key: nil)
        #expect(page.status == 200 && page.type.hasPrefix("text/html") && page.body.contains("admin API key"))
    }

    @Test func theTapShowsLiveMessagesRedactedAndSampled() async throws {
        let store = try SQLiteStore(path: ":memory:")
        try await store.migrate()
        let (_, ingest) = try await APIKeys.create(tenant: "a", scopes: ["ingest"], name: "utility", at: Date(), store: store)
        let server = try await APIServer.start(store: store, flowYAML: [Self.flow()])
        defer { server.stop() }
        let tap = try #require(server.hub.tap(flow: "ops", node: "hook", tenant: nil))
        #expect(server.hub.tap(flow: "ops", node: "hook", tenant: "b") == nil)
        var events = try #require(tap.subscribe()).makeAsyncIterator()
        #expect(try await server.send("POST", "/hooks/ops", key: ingest, json: body(10, note: "says \(Self.secret)")).status == 202)
        let event = try #require(await events.next())
        #expect(event.port == "out" && event.message.contains(Self.cups) && event.message.contains("says ***") && !event.message.contains(Self.secret))

        // At most `rate` a second; the rest are counted in the next event shown.
        let sampled = Tap(redactor: Redactor(), watchers: TapWatchers(rate: 3))
        var stream = try #require(sampled.subscribe()).makeAsyncIterator()
        let t0 = Date()
        for i in 0..<10 { sampled.publish(Message(payload: .number(Double(i))), port: "out", at: t0.addingTimeInterval(Double(i) * 0.05)) }
        sampled.publish(Message(payload: "late"), port: "out", at: t0.addingTimeInterval(1.5))
        var seen: [Tap.Event] = []
        for _ in 0..<4 { if let e = await stream.next() { seen.append(e) } }
        #expect(seen.map { (try? JSONValue.parse($0.message))?["payload"] } == [0, 1, 2, "late"], "\(seen.map(\.message))")
        #expect(seen.map(\.skipped) == [0, 0, 0, 7])
    }

    /// 500 taps that never read and eight 4 MB messages once reached 4.1 GB: a message is shown cut
    /// to 16 KiB, and there are at most 64 watchers at a time.
    @Test func tapsShowAtMost16KiBOfAMessageToAtMost64Watchers() async throws {
        let limit = TapWatchers(rate: 5)
        let tap = Tap(redactor: Redactor(secrets: ["top-secret-value"]), watchers: limit)
        var watchers: [AsyncStream<Tap.Event>] = []
        while let stream = tap.subscribe() { watchers.append(stream) }
        #expect(watchers.count == 64, "the 65th is refused")
        #expect(Tap(redactor: Redactor(), watchers: limit).subscribe() == nil, "the limit is the hub's, over all its taps")
        let big = Message(payload: ["note": .string("top-secret-value " + String(repeating: "x", count: 4 << 20))])
        tap.publish(big, port: "in")
        var first = watchers[0].makeAsyncIterator()
        defer { watchers.removeAll() }
        let event = try #require(await first.next())
        #expect(event.message.utf8.count < Tap.maxEventBytes + 100 && event.message.contains("cut: 4194") && !event.message.contains("top-secret"))
    }
}
