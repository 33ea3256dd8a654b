import Foundation
import Synchronization
import TestSupport
import Testing

extension CLITests {
    /// Three instances on one PostgreSQL and one Mosquitto, each in a folder of its own (as on three
    /// machines): a burst of MQTT messages is shared between them through a shared subscription and
    /// stored once; the pull's holder paused in the middle of a request loses its lease and, woken,
    /// commits nothing of its answer; the next holder killed, the third takes over and asks nothing
    /// again (the request log of the local fixture server says so).
    @Test func threeInstancesShareMQTTAndFailOverThePullWithoutDoubleWork() async throws {
        let pg = try PostgresServer.start()
        defer { pg.destroy() }
        let url = try pg.createDatabase()
        let database = PostgresServer.database(in: url)
        let broker = try MosquittoServer.start()
        defer { broker.destroy() }
        // The first answer for 06-03 is held until the test lets it go, and differs from later ones:
        // if the instance that asked first wrote it, the readings would show it.
        let gate = AsyncStream<Void>.makeStream()
        let asked = Mutex<[String]>([])
        let server = try await FixtureServer.start { request in
            let first = asked.withLock { log -> Bool in
                defer { log.append(request.startDay) }
                return !log.contains(request.startDay)
            }
            if request.startDay == "2021-06-03" && first {
                for await _ in gate.stream { break }
                return .json(SyntheticAnswers.redataPrices(day: request.startDay).replacingOccurrences(of: #""value": "#, with: #""value": 9"#))
            }
            return .json(SyntheticAnswers.redataPrices(day: request.startDay))
        }
        defer { server.stop() }
        let flow = """
            flow: site
            tenant: demo
            connections:
              broker: { type: mqtt.broker, port: \(broker.port), client_id: hub }
            nodes:
              - id: telemetry
                type: mqtt.in
                connection: broker
                topics: [burst/+/power]
                shared_group: hubs
                qos: 1
                readings: { series: "device:{topic.2}", quantity: power, ts: "{payload.ts}", ts_format: epoch_s, value: "{payload.w}", unit: W }
                to: [store]
              - { id: start, type: schedule, every: 1d, to: [prices] }
              - id: prices
                type: redata.prices
                base_url: \(server.baseURL)
                from: 2021-06-01
                until: 2021-06-03
                request_attempts: 1
                timeout: 120s
                to: [store]
              - { id: store, type: store.readings, flush_interval: 50ms }
            """
        func instance(_ name: String) throws -> RunningHub {
            let dir = try projectDirectory(flow: flow, named: "site")
            return try RunningHub(["run", "--http", "127.0.0.1:0", "--instance", name], in: dir, environment: ["ENCHUFE_STORE": url])
        }
        func holder() throws -> String { try pg.psql("SELECT holder || ':' || fence FROM leases WHERE name = 'demo/site/start' AND expires_at > now()", database: database) }
        func count(_ sql: String) throws -> Int { Int(try pg.psql(sql, database: database)) ?? -1 }

        let a = try instance("a")
        defer { a.terminate() }
        _ = try await a.poll("/healthz") { _ in asked.withLock { $0.contains("2021-06-03") } }
        #expect(try holder() == "a:1" && asked.withLock { $0 } == ["2021-06-01", "2021-06-02", "2021-06-03"])
        let b = try instance("b"), c = try instance("c")
        defer { b.terminate(); c.terminate() }

        // A burst over the shared subscription: every message stored once, spread over the instances.
        for hub in [a, b, c] { _ = try await hub.poll("/healthz") { _ in hub.output.contains("subscribing to $share/hubs/burst/+/power") } }
        let burst = 3000
        try await Self.publish(burst, to: broker, topic: { "burst/dev\($0 % 10)/power" }, payload: { #"{"ts": \#(1_780_000_000 + $0), "w": \#($0)}"# })
        _ = try await a.poll("/healthz") { _ in (try? count("SELECT count(*) FROM readings WHERE quantity = 'power'")) == burst }
        #expect(try count("SELECT count(*) FROM readings WHERE quantity = 'power'") == burst)
        #expect(try count("SELECT max(revision) FROM readings WHERE quantity = 'power'") == 1)
        var shares: [Int] = []
        for hub in [a, b, c] {
            let body = try await get(hub.base + "/api/v1/flows/site").body
            let flow = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
            let node = (flow?["nodes"] as? [[String: Any]])?.first { $0["id"] as? String == "telemetry" }
            shares.append(node?["messages_out"] as? Int ?? 0)
        }
        print("the burst of \(burst) was shared as \(shares)")
        #expect(shares.reduce(0, +) == burst && shares.filter { $0 > 0 }.count >= 2, "\(shares)")

        // a is paused with its request for 06-03 unanswered: its lease passes on.
        kill(a.process.processIdentifier, SIGSTOP)
        let paused = ContinuousClock.now
        _ = try await b.poll("/healthz") { _ in ["b:2", "c:2"].contains((try? holder()) ?? "") }
        print("lease moved \(ContinuousClock.now - paused) after the holder was paused")
        let second = try holder()
        #expect(["b:2", "c:2"].contains(second))
        _ = try await b.poll("/healthz") { _ in (try? count("SELECT count(*) FROM readings WHERE quantity <> 'power'")) == 144 }
        #expect(try count("SELECT count(*) FROM readings WHERE quantity <> 'power'") == 144, "the new holder stored 06-03")

        // a wakes and gets its (different) answer: it writes nothing of it.
        gate.continuation.yield()
        kill(a.process.processIdentifier, SIGCONT)
        _ = try await a.poll("/healthz") { _ in a.output.contains("lost the lease of this source (fence 1)") && a.output.contains("nothing was written") }
        #expect(a.output.contains("is held by another instance now: nothing was written"), "\(a.output.suffix(2000))")
        #expect(try count("SELECT count(*) FROM readings WHERE quantity <> 'power' AND (revision > 1 OR value >= 9000)") == 0, "nothing of a's late answer")

        // The holder is killed: the third instance takes over, and asks nothing again.
        let requestsBefore = asked.withLock { $0.count }
        let (killedHub, survivor) = second.hasPrefix("b") ? (b, c) : (c, b)
        kill(killedHub.process.processIdentifier, SIGKILL)
        let killed = ContinuousClock.now
        let third = second.hasPrefix("b") ? "c:3" : "b:3"
        _ = try await survivor.poll("/healthz") { _ in ["a:3", third].contains((try? holder()) ?? "") }
        print("lease moved \(ContinuousClock.now - killed) after the holder was killed")
        #expect(["a:3", third].contains(try holder()))
        // Its schedule fired on taking over: the pull found every day stored and asked nothing.
        let holderHub = try holder().hasPrefix("a") ? a : survivor
        _ = try await holderHub.poll("/api/v1/flows/site") { $0.body.contains(#""id":"prices""#) && $0.body.contains(#""messages_in":1"#) }
        #expect(asked.withLock { $0.count } == requestsBefore, "no request after the failover: \(asked.withLock { $0 })")
        // (06-01 and 06-02 were asked twice: a pull commits its days when its trigger is done, and
        // the paused holder never finished it; every price is stored once, at revision 1.)
        #expect(try count("SELECT count(*) FROM readings WHERE quantity <> 'power'") == 144)
        #expect(try count("SELECT max(revision) FROM readings WHERE quantity <> 'power'") == 1)
    }
}
