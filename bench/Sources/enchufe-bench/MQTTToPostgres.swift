// mqtt-to-postgres: QoS 1 JSON telemetry from a real Mosquitto into PostgreSQL. In the same run:
// (a) the broker's own delivery rate to a do-nothing subscriber (`mosquitto_sub -q 1 > /dev/null`),
// (b) a Python peer written the way an integrator would (paho-mqtt + psycopg, batched COPY),
// (c) Enchufe: `mqtt.in → store.readings` on PostgreSQL, in this process;
// (d) one `enchufe run` process and (e) two, sharing the subscription (`shared_group`), on one database.
// Each is timed from the first publish until it has consumed (a) or stored (b–e) every message.
// (f) a backlog: the broker (fa), the Python peer (fb) and `enchufe run` (fc) each drain N messages
// queued for their persistent session while they were away, timed from their start.
import EnchufeCore
import Foundation
import Logging
import MQTT
import Postgres
import PostgresNIO
import TestSupport

func mqttToPostgresBenchmark(messages total: Int, python: String, peerScript: String) async throws {
    // ENCHUFE_BENCH_STAGES=backlog runs the backlog stage (f) alone (`backlog,no-peer` without the
    // Python peer); ENCHUFE_BENCH_PERF=FILE records
    // `perf record -a -g` (the whole machine; ENCHUFE_BENCH_PERF_HZ samples a second, default 999;
    // ENCHUFE_BENCH_PERF_HUB=1 the hub alone, with DWARF call graphs)
    // while `enchufe run` drains the backlog (fc) into FILE; ENCHUFE_BENCH_SYSCALLS=1 counts the
    // draining hub's system calls by kind (`perf stat` on the syscall tracepoints) and prints them
    // per message.
    let environment = ProcessInfo.processInfo.environment
    let stages = environment["ENCHUFE_BENCH_STAGES"].map { Set($0.split(separator: ",").map(String.init)) } ?? ["live", "backlog"]
    let enchufe = try releasedEnchufe()
    let pg = try PostgresServer.start(durable: true)
    defer { pg.destroy() }
    let broker = try MosquittoServer.start()
    defer { broker.destroy() }
    let url = try pg.createDatabase(prefix: "bench")
    let database = PostgresServer.database(in: url)
    let quiet = Logger(label: "bench") { _ in SwiftLogNoOpLogHandler() }
    let store = try PostgresStore(url: url, logger: quiet)
    // The store runs in a task of the benchmark's own, stopped where the store was used last.
    let storeRun = Task { await store.run() }
    try await store.migrate()
    try pg.psql("CREATE TABLE python_readings (LIKE readings INCLUDING ALL)", database: database)
    print("mqtt-to-postgres: \(total) QoS 1 JSON messages, one reading each; Mosquitto and PostgreSQL (fsync on) on loopback")

    var settings = MQTTSettings(port: broker.port, clientID: "bench-publisher")
    settings.cleanSession = true
    settings.inflight = 1000
    var publisherHandlers = MosquittoClient.Handlers()
    let up = AsyncStream<Void>.makeStream()
    publisherHandlers.connection = { _, connected, _ in if connected { up.continuation.yield() } }
    let publisher = try MosquittoClient(settings, handlers: publisherHandlers)
    try publisher.start()
    for await _ in up.stream { break }
    defer { publisher.stop() }

    func payload(_ i: Int) -> [UInt8] { Array(#"{"ts": \#(1_774_742_400 + i), "w": \#(i % 5000)}"#.utf8) }
    /// Publishes every message, 1,000 unconfirmed at any time (the next goes out as one is confirmed).
    func publishAll(_ root: String) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<total {
                if i >= 1000 { try await group.next() }
                group.addTask { try await publisher.publish(topic: "\(root)/dev-\(i % 500)/telemetry", payload: payload(i), qos: 1, retain: false) }
            }
            try await group.waitForAll()
        }
    }
    func rows(_ table: String, database: String = database, where condition: String = "true") -> Int {
        Int((try? pg.psql("SELECT count(*) FROM \(table) WHERE \(condition)", database: database)) ?? "") ?? 0
    }
    /// Rows of the telemetry, without the probes (one may arrive late: it had no subscriber yet).
    let telemetry = "series <> 'device:probe'"
    /// Publishes probes on ROOT (series `device:probe`, timestamps on 1970-01-02, apart from the
    /// telemetry's and within the instants the hub takes), one every 100 ms, until `subscribed`
    /// (bounded: 60 s).
    func probe(_ root: String, until subscribed: () async throws -> Bool) async throws {
        var probes = 0
        let deadline = ContinuousClock.now + .seconds(60)
        while try await !subscribed() {
            guard ContinuousClock.now < deadline else { throw BenchError("no consumer of \(root) got a probe in 60 s") }
            probes += 1
            try await publisher.publish(topic: "\(root)/probe/telemetry", payload: Array(#"{"ts": \#(86_400 + probes), "w": 0}"#.utf8), qos: 1, retain: false)
            try await Task.sleep(for: .milliseconds(100))
        }
    }
    /// The flow of (c)–(e): `mqtt.in` on ROOT/+/telemetry → `store.readings`.
    func flow(root: String, sharedGroup: String? = nil, journal: String = "var/journal") -> String {
        """
        flow: telemetry
        tenant: demo
        connections:
          broker: { type: mqtt.broker, port: \(broker.port), client_id: bench }
        nodes:
          - id: devices
            type: mqtt.in
            connection: broker
            topics: [\(root)/+/telemetry]
            \(sharedGroup.map { "shared_group: \($0)" } ?? "")
            qos: 1
            journal: \(journal)
            readings: { series: "device:{topic.2}", quantity: power, ts: "{payload.ts}", ts_format: epoch_s, value: "{payload.w}", unit: W }
            to: [store]
          - { id: store, type: store.readings, batch_size: 2000, flush_interval: 100ms }
        """
    }
    /// Waits until TABLE holds `expected` rows of telemetry: first, every 20 ms over one connection,
    /// until the last message published has its row (a primary-key lookup: consumers store in the
    /// order of arrival; a `psql` started every 50 ms for a `count(*)` took over 5% of the machine
    /// from the consumers), then until the count is right.
    func waitForRows(_ table: String, _ expected: Int, database: String = database, where condition: String = "true") async throws {
        let last = "tenant = 'demo' AND series = 'device:dev-\((expected - 1) % 500)' AND quantity = 'power' AND ts = to_timestamp(\(1_774_742_400 + expected - 1))"
        try await RowProbe.wait(port: pg.port, database: database, sql: "SELECT count(*) FROM \(table) WHERE \(last)", every: .milliseconds(20))
        let deadline = ContinuousClock.now + .seconds(600)
        while rows(table, database: database, where: condition) < expected {
            guard ContinuousClock.now < deadline else {
                throw BenchError("\(table) in \(database) holds \(rows(table, database: database, where: condition)) rows, not \(expected), after 10 minutes")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    let dsn = "host=127.0.0.1 port=\(pg.port) user=postgres dbname=\(database)"
    if stages.contains("live") {
        // (a) The broker alone: a persistent session made first, so nothing published is missed.
        try Commands.run("/usr/bin/mosquitto_sub", ["-h", "127.0.0.1", "-p", "\(broker.port)", "-c", "-i", "bench-sub", "-q", "1", "-t", "a/#", "-E"])
        let subscriber = Process()
        subscriber.executableURL = URL(fileURLWithPath: "/usr/bin/mosquitto_sub")
        subscriber.arguments = ["-h", "127.0.0.1", "-p", "\(broker.port)", "-c", "-i", "bench-sub", "-q", "1", "-t", "a/#", "-C", "\(total)"]
        subscriber.standardOutput = FileHandle.nullDevice
        try subscriber.run()
        var started = ContinuousClock.now
        try await publishAll("a")
        await Task.detached { subscriber.waitUntilExit() }.value
        let brokerRate = Double(total) / (ContinuousClock.now - started).seconds
        print(String(format: "  (a) mosquitto_sub -q 1 > /dev/null: %.0f messages/s", brokerRate))

        // (b) The Python peer.
        // Started with a clean signal mask (Commands.spawn), so its SIGTERM at the end arrives.
        let peer = try Commands.spawn(
            python, [peerScript, "127.0.0.1", "\(broker.port)", "b/+/telemetry", "bench-python", dsn, "python_readings", "\(total)"], output: "/dev/null")
        defer { stop(peer) }
        try await probe("b") { rows("python_readings") > 0 }
        started = ContinuousClock.now
        try await publishAll("b")
        try await waitForRows("python_readings", total, where: telemetry)
        let pythonRate = Double(total) / (ContinuousClock.now - started).seconds
        print(String(format: "  (b) Python peer (paho-mqtt + psycopg COPY): %.0f messages/s", pythonRate))

        // (c) Enchufe.
        let journal = pg.directory.appendingPathComponent("journal")
        let registry = NodeRegistry(CoreNodes.specs + MQTTModule.specs)
        let yaml = flow(root: "c", journal: journal.path)
        let (definition, problems) = FlowLoader(registry: registry, environment: [:]).load(text: yaml, file: "bench.yaml")
        guard let definition, problems.isEmpty else { throw CocoaError(.featureUnsupported, userInfo: ["problems": "\(problems)"]) }
        let hub = Hub(flows: [definition], registry: registry, environment: EngineEnvironment(store: store, logger: quiet))
        let running = Task { await hub.runFlows() }
        try await probe("c") { rows("readings") > 0 }
        started = ContinuousClock.now
        try await publishAll("c")
        try await waitForRows("readings", total, where: telemetry)
        let hubRate = Double(total) / (ContinuousClock.now - started).seconds
        hub.stop()
        await running.value
        storeRun.cancel()
        await storeRun.value
        print(String(format: "  (c) Enchufe mqtt.in → store.readings: %.0f messages/s", hubRate))

        print(String(format: "Enchufe / Python peer: %.2f", hubRate / pythonRate))
        print(String(format: "Enchufe / broker's own delivery: %.2f", hubRate / brokerRate))

        /// `enchufe run` processes sharing `ROOT/+/telemetry` (one flow file, one working folder), on a
        /// database of the stage's own; returns the rate, each instance's share, the CPU time the
        /// instances spent per message, and how busy the machine's cores were meanwhile.
        func instances(_ count: Int, root: String) async throws -> (rate: Double, shares: [Int], cpuMicroseconds: Double, busy: Double) {
            let url = try pg.createDatabase(prefix: "bench")
            let database = PostgresServer.database(in: url)
            let folder = pg.directory.appendingPathComponent("run-\(root)")
            try FileManager.default.createDirectory(at: folder.appendingPathComponent("pipelines"), withIntermediateDirectories: true)
            try flow(root: root, sharedGroup: "bench").write(to: folder.appendingPathComponent("pipelines/telemetry.yaml"), atomically: true, encoding: .utf8)
            var hubs: [RunningHub] = []
            defer { for hub in hubs { hub.terminate() } }
            for n in 1...count {
                // One after the other: the first creates the tables.
                hubs.append(try RunningHub(binary: enchufe, ["run", "--http", "127.0.0.1:0", "--instance", "bench-\(n)"], in: folder, environment: ["ENCHUFE_STORE": url]))
            }
            /// Messages an instance received, from its metrics.
            func received(_ hub: RunningHub) async throws -> Int {
                let metrics = try await get(hub.base + "/metrics").body
                return metrics.split(separator: "\n").first { $0.hasPrefix("enchufe_mqtt_messages_received_total") }
                    .flatMap { $0.split(separator: " ").last }.flatMap { Double($0) }.map(Int.init) ?? 0
            }
            // Every instance subscribed: each received a probe.
            try await probe(root) { try await !hubs.asyncContains { try await received($0) == 0 } }
            let before = try await hubs.asyncMap(received)
            let cpuBefore = hubs.map { cpuSeconds($0.process.processIdentifier) }.reduce(0, +)
            let machineBefore = machineTicks()
            let started = ContinuousClock.now
            try await publishAll(root)
            try await waitForRows("readings", total, database: database, where: telemetry)
            let rate = Double(total) / (ContinuousClock.now - started).seconds
            let cpu = hubs.map { cpuSeconds($0.process.processIdentifier) }.reduce(0, +) - cpuBefore
            let machineAfter = machineTicks()
            let busy = 1 - Double(machineAfter.idle - machineBefore.idle) / Double(machineAfter.total - machineBefore.total)
            let shares = zip(try await hubs.asyncMap(received), before).map { $0 - $1 }
            for hub in hubs { _ = hub.stop() }
            guard rows("readings", database: database, where: telemetry) == total else { throw BenchError("readings holds more rows than were published") }
            return (rate, shares, cpu / Double(total) * 1e6, busy)
        }
        let one = try await instances(1, root: "d")
        print(String(format: "  (d) one enchufe run process: %.0f messages/s (hub CPU %.1f µs/message; machine %.0f%% busy)", one.rate, one.cpuMicroseconds, one.busy * 100))
        let two = try await instances(2, root: "e")
        print(String(format: "  (e) two enchufe run processes, shared subscription: %.0f messages/s (hub CPU %.1f µs/message; machine %.0f%% busy; received %@)",
            two.rate, two.cpuMicroseconds, two.busy * 100, two.shares.map(String.init).joined(separator: " / ")))
        print(String(format: "two instances / one: %.2f", two.rate / one.rate))

    }

    guard stages.contains("backlog") else { return }
    var started: ContinuousClock.Instant
    // (f) A backlog: each consumer's session is made first, then every message is published while
    // it is away, then it starts and drains what the broker queued (timed from its start).
    print("backlog: \(total) messages queued for each consumer's session before it starts")
    try Commands.run("/usr/bin/mosquitto_sub", ["-h", "127.0.0.1", "-p", "\(broker.port)", "-c", "-i", "bench-backlog", "-q", "1", "-t", "fa/#", "-E"])
    try await publishAll("fa")
    let drain = Process()
    drain.executableURL = URL(fileURLWithPath: "/usr/bin/mosquitto_sub")
    drain.arguments = ["-h", "127.0.0.1", "-p", "\(broker.port)", "-c", "-i", "bench-backlog", "-q", "1", "-t", "fa/#", "-C", "\(total)"]
    drain.standardOutput = FileHandle.nullDevice
    let childrenBefore = childrenCPUSeconds()
    started = ContinuousClock.now
    try drain.run()
    await Task.detached { drain.waitUntilExit() }.value
    let brokerBacklog = Double(total) / (ContinuousClock.now - started).seconds
    let subscriberCPU = (childrenCPUSeconds() - childrenBefore) / Double(total) * 1e6
    print(String(format: "  (fa) mosquitto_sub -q 1 > /dev/null: %.0f messages/s (its CPU %.1f µs/message: libmosquitto receiving and acknowledging)", brokerBacklog, subscriberCPU))

    // ENCHUFE_BENCH_STAGES=backlog,no-peer leaves the Python peer out (to measure the hub alone).
    var pythonBacklog = Double.nan
    if !stages.contains("no-peer") {
        try pg.psql("CREATE TABLE python_backlog (LIKE readings INCLUDING ALL)", database: database)
        func pythonPeer(count: Int) throws -> pid_t {
            try Commands.spawn(
                python, [peerScript, "127.0.0.1", "\(broker.port)", "fb/+/telemetry", "bench-python-backlog", dsn, "python_backlog", "\(count)", "3600"],
                output: "/dev/null")
        }
        let first = try pythonPeer(count: 1)  // makes the session; ends after one probe's row
        try await probe("fb") { rows("python_backlog") > 0 }
        await Task.detached { _ = Commands.wait(first) }.value
        try await publishAll("fb")
        started = ContinuousClock.now
        let second = try pythonPeer(count: total + 1000)  // late probes may come first
        defer { stop(second) }
        try await waitForRows("python_backlog", total, where: telemetry)
        pythonBacklog = Double(total) / (ContinuousClock.now - started).seconds
        print(String(format: "  (fb) Python peer: %.0f messages/s", pythonBacklog))
    }

    // ENCHUFE_BENCH_ROUNDS (default 1) drains as many backlogs, each on a database and a session of
    // its own; the best round counts.
    let rounds = max(1, Int(environment["ENCHUFE_BENCH_ROUNDS"] ?? "") ?? 1)
    var hubBacklog = 0.0
    for round in 1...rounds {
        let root = rounds == 1 ? "fc" : "fc\(round)"
        let backlogURL = try pg.createDatabase(prefix: "bench")
        let backlogDatabase = PostgresServer.database(in: backlogURL)
        let folder = pg.directory.appendingPathComponent("run-\(root)")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("pipelines"), withIntermediateDirectories: true)
        try flow(root: root).write(to: folder.appendingPathComponent("pipelines/telemetry.yaml"), atomically: true, encoding: .utf8)
        let making = try RunningHub(binary: enchufe, ["run", "--http", "127.0.0.1:0"], in: folder, environment: ["ENCHUFE_STORE": backlogURL])
        try await probe(root) { rows("readings", database: backlogDatabase) > 0 }
        // What a start costs with (almost) nothing to do: the hub that made the session, probes and all.
        let startCPU = cpuSeconds(making.process.processIdentifier)
        try expectStop(making.stop() == 0, "the hub making the session did not stop cleanly")
        try await publishAll(root)
        started = ContinuousClock.now
        let draining = try RunningHub(binary: enchufe, ["run", "--http", "127.0.0.1:0"], in: folder, environment: ["ENCHUFE_STORE": backlogURL])
        defer { draining.terminate() }
        let profiler = try environment["ENCHUFE_BENCH_PERF"].map { file in
            // ENCHUFE_BENCH_PERF_HUB=1: the hub alone, with DWARF call graphs (Swift code has no frame pointers).
            let scope = environment["ENCHUFE_BENCH_PERF_HUB"] != nil
                ? ["-p", "\(draining.process.processIdentifier)", "--call-graph", "dwarf,16384"] : ["-a", "-g"]
            return try Commands.spawn("/usr/bin/perf", ["record"] + scope + ["-F", environment["ENCHUFE_BENCH_PERF_HZ"] ?? "999", "-q", "-o", file], output: file + ".log")
        }
        let counts = folder.appendingPathComponent("syscalls.txt").path
        let counter = try environment["ENCHUFE_BENCH_SYSCALLS"].map { _ in
            try Commands.spawn("/usr/bin/perf", ["stat", "-x", ",", "-o", counts, "-p", "\(draining.process.processIdentifier)", "-e", SyscallCount.events], output: "/dev/null")
        }
        try await waitForRows("readings", total, database: backlogDatabase, where: telemetry)
        for tool in [profiler, counter].compactMap({ $0 }) {
            kill(tool, SIGINT)
            await Task.detached { _ = Commands.wait(tool) }.value
        }
        let rate = Double(total) / (ContinuousClock.now - started).seconds
        hubBacklog = max(hubBacklog, rate)
        let cpu = cpuTimes(draining.process.processIdentifier)
        print(String(format: "  (fc) enchufe run: %.0f messages/s (hub CPU %.1f µs/message: %.1f user, %.1f system; start-up included; a start alone took %.0f ms of CPU)",
            rate, (cpu.user + cpu.system) / Double(total) * 1e6, cpu.user / Double(total) * 1e6, cpu.system / Double(total) * 1e6, startCPU * 1000))
        if counter != nil { print("       system calls a message: " + SyscallCount.perMessage(file: counts, messages: total)) }
    }
    print(String(format: "backlog: Enchufe / broker's own delivery: %.2f; Enchufe / Python peer: %.2f", hubBacklog / brokerBacklog, hubBacklog / pythonBacklog))
}

/// Ends a peer started with `Commands.spawn` (SIGTERM; it may have ended already) and reaps it.
func stop(_ pid: pid_t) {
    kill(pid, SIGTERM)
    Commands.wait(pid)
}

/// Stops the benchmark with `reason` unless `condition` holds.
func expectStop(_ condition: Bool, _ reason: String) throws {
    guard condition else { throw BenchError(reason) }
}

/// User and system CPU time a process has used so far, from /proc/PID/stat.
func cpuSeconds(_ pid: Int32) -> Double {
    let times = cpuTimes(pid)
    return times.user + times.system
}

/// User and system CPU time a process has used so far, apart, in seconds.
func cpuTimes(_ pid: Int32) -> (user: Double, system: Double) {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let end = stat.lastIndex(of: ")") else { return (0, 0) }
    // After the command name: state is field 3, utime and stime are fields 14 and 15.
    let fields = stat[stat.index(after: end)...].split(separator: " ")
    guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return (0, 0) }
    let tick = Double(sysconf(Int32(_SC_CLK_TCK)))
    return (user / tick, system / tick)
}

/// The system calls `ENCHUFE_BENCH_SYSCALLS` counts, and their counts per message from `perf stat -x ,`.
enum SyscallCount {
    static let kinds = ["read", "write", "writev", "pwrite64", "poll", "ppoll", "epoll_wait", "futex", "sendto", "recvfrom", "fdatasync", "madvise", "munmap", "mmap"]
    static let events = (["raw_syscalls:sys_enter"] + kinds.map { "syscalls:sys_enter_\($0)" }).joined(separator: ",")

    /// "all 5.2, read 3.0, write 1.1, …" (kinds under 0.01 a message left out).
    static func perMessage(file: String, messages: Int) -> String {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { return "(no counts: \(file))" }
        var parts: [String] = []
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
            guard fields.count > 2, let count = Double(fields[0]) else { continue }
            let name = fields[2] == "raw_syscalls:sys_enter" ? "all" : String(fields[2].replacingOccurrences(of: "syscalls:sys_enter_", with: ""))
            let each = count / Double(messages)
            if each >= 0.01 { parts.append(String(format: "%@ %.2f", name, each)) }
        }
        return parts.joined(separator: ", ")
    }
}

/// User and system CPU time of this process's children that have ended and been waited for.
func childrenCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_CHILDREN.rawValue, &usage)
    func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// The machine's CPU time so far, all cores, in ticks: idle (with I/O wait) and total, from /proc/stat.
func machineTicks() -> (idle: Int, total: Int) {
    guard let stat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8), let line = stat.split(separator: "\n").first else { return (0, 1) }
    let ticks = line.split(separator: " ").dropFirst().compactMap { Int($0) }  // user nice system idle iowait irq softirq steal ...
    guard ticks.count >= 5 else { return (0, 1) }
    return (ticks[3] + ticks[4], ticks.prefix(8).reduce(0, +))
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }

    func asyncContains(where predicate: (Element) async throws -> Bool) async rethrows -> Bool {
        for element in self where try await predicate(element) { return true }
        return false
    }
}

/// Polls a PostgreSQL database over one connection until a `count(*)` query answers more than 0.
enum RowProbe {
    static func wait(port: Int, database: String, sql: String, every interval: Duration) async throws {
        let configuration = PostgresClient.Configuration(host: "127.0.0.1", port: port, username: "postgres", password: nil, database: database, tls: .disable)
        let client = PostgresClient(configuration: configuration)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            let deadline = ContinuousClock.now + .seconds(600)
            while true {
                var found = 0
                for try await n in try await client.query(PostgresQuery(unsafeSQL: sql)).decode(Int.self) { found = n }
                if found > 0 { return }
                guard ContinuousClock.now < deadline else { throw BenchError("no row for `\(sql)` in 10 minutes") }
                try await Task.sleep(for: interval)
            }
        }
    }
}
