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
