import Foundation
import TestSupport
import Testing

extension CLITests {
    /// `file.in`: a file moved into the drop folder is read whole, committed, then moved to done/;
    /// one that cannot be read goes to failed/ with the reason beside it, storing nothing; partial
    /// files (`.part`) are left alone.
    @Test func droppedFilesAreReadOnceAndMovedToDoneOrFailed() async throws {
        let dir = try projectDirectory(flow: """
            flow: drop
            nodes:
              - id: drop
                type: file.in
                path: var/drop
                every: 50ms
                to: [store]
              - { id: store, type: store.readings, flush_interval: 20ms }
            """, named: "drop")
        let drop = dir.appendingPathComponent("var/drop")
        let db = dir.appendingPathComponent("var/enchufe.sqlite").path
        let fm = FileManager.default
        func waitFor(_ condition: () -> Bool) {
            let deadline = ContinuousClock.now + .seconds(30)  // a bound for failure, not a pace
            while !condition() && ContinuousClock.now < deadline { usleep(20_000) }
        }
        let hub = try RunningHub(["run", "--http", "127.0.0.1:0"], in: dir)
        defer { hub.terminate() }
        waitFor { fm.fileExists(atPath: drop.appendingPathComponent("done").path) }

        // Written elsewhere, then moved in whole.
        let curves = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("EnchufeCoreTests/Curves")
        let staging = dir.appendingPathComponent("staging.csv")
        try fm.copyItem(at: curves.appendingPathComponent("cch_cons_distribuidora.csv"), to: staging)
        try fm.moveItem(at: staging, to: drop.appendingPathComponent("october.csv"))
        try Data("CUPS;Fecha;Hora;Consumo_kWh\nES9;01/06/2024;1;0,5\nES9;01/06/2024;1;0,6\n".utf8).write(to: drop.appendingPathComponent("bad.csv"))
        try Data("CUPS;Fecha;Hora;Consumo_kWh\nES8;01/06/2024;1;0,5\n".utf8).write(to: drop.appendingPathComponent("still-writing.csv.part"))

        waitFor { fm.fileExists(atPath: drop.appendingPathComponent("done/october.csv").path) && fm.fileExists(atPath: drop.appendingPathComponent("failed/bad.csv.error").path) }
        #expect(try sqlite(db, "SELECT count(*) FROM readings WHERE series = 'ES0031000000000001BJ0F'") == "49", "committed before the move")
        #expect(!fm.fileExists(atPath: drop.appendingPathComponent("october.csv").path))
        let reason = try String(contentsOf: drop.appendingPathComponent("failed/bad.csv.error"), encoding: .utf8)
        #expect(reason.contains("line 3") && reason.contains("appears twice"), "\(reason)")
        #expect(try sqlite(db, "SELECT count(*) FROM readings WHERE series = 'ES9'") == "0")
        #expect(fm.fileExists(atPath: drop.appendingPathComponent("still-writing.csv.part").path), "a partial file is not read")
        #expect(hub.stop() == 0)
        #expect(try sqlite(db, "SELECT count(*) FROM readings") == "49", "each file read once")
    }
}

extension CLITests {
    /// A dropped file with an absurd time once crashed the hub about 17 s after every start (a crash
    /// loop); a link could make the hub read any file it may read; a huge file, fill its memory.
    /// Each is moved to failed/ with the reason, and the hub goes on.
    @Test func hostileDroppedFilesAreMovedToFailedAndTheHubGoesOn() async throws {
        let dir = try projectDirectory(flow: """
            flow: drop
            nodes:
              - id: drop
                type: file.in
                path: var/drop
                every: 50ms
                max_size: 2000
                readings: { series: "{payload.series}", quantity: consumption, ts: "{payload.ts}", value: "{payload.kwh}", unit: kWh }
                to: [store]
              - { id: store, type: store.readings, flush_interval: 20ms }
            """, named: "drop")
        let drop = dir.appendingPathComponent("var/drop")
        let fm = FileManager.default
        func waitFor(_ condition: () -> Bool) {
            let deadline = ContinuousClock.now + .seconds(30)  // a bound for failure, not a pace
            while !condition() && ContinuousClock.now < deadline { usleep(20_000) }
        }
        let hub = try RunningHub(["run", "--http", "127.0.0.1:0"], in: dir)
        defer { hub.terminate() }
        waitFor { fm.fileExists(atPath: drop.appendingPathComponent("done").path) }
        try Data("series,ts,kwh\nX,1e300,1\n".utf8).write(to: drop.appendingPathComponent("absurd.csv"))
        try Data("series,ts,kwh\nX,2026-06-01T00:00:00Z,nan\n".utf8).write(to: drop.appendingPathComponent("nan.csv"))
        try fm.createSymbolicLink(atPath: drop.appendingPathComponent("link.csv").path, withDestinationPath: "/etc/hostname")
        try Data(("series,ts,kwh\n" + String(repeating: "X,2026-06-01T00:00:00Z,1\n", count: 200)).utf8).write(to: drop.appendingPathComponent("big.csv"))
        try Data("series,ts,kwh\nX,2026-06-01T00:00:00Z,1\n".utf8).write(to: drop.appendingPathComponent("fine.csv"))
        let failed = drop.appendingPathComponent("failed")
        waitFor { ["absurd", "nan", "link", "big"].allSatisfy { fm.fileExists(atPath: failed.appendingPathComponent("\($0).csv.error").path) } && fm.fileExists(atPath: drop.appendingPathComponent("done/fine.csv").path) }
        func reason(_ name: String) -> String { (try? String(contentsOf: failed.appendingPathComponent("\(name).csv.error"), encoding: .utf8)) ?? "" }
        #expect(reason("absurd").contains("outside 1970-01-01T00:00:00Z to 2099-12-31T23:59:59Z"), "\(reason("absurd"))")
        #expect(reason("nan").contains("not a finite number"), "\(reason("nan"))")
        #expect(reason("link").contains("not a regular file"), "\(reason("link"))")
        #expect(reason("big").contains("max_size"), "\(reason("big"))")
        #expect(try sqlite(dir.appendingPathComponent("var/enchufe.sqlite").path, "SELECT count(*) FROM readings") == "1")
        #expect(hub.process.isRunning && hub.stop() == 0)
    }
}
