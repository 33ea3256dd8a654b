import EnchufeCore
import Foundation
import Optimizer

/// `optimize.schedule`'s solver on a day of quarter-hours (96 intervals) with ten assets — three
/// batteries, four EV chargers with a minimum power (binaries), three deferrable loads — against
/// GLPK's own `glpsol` solving the same program from the CPLEX LP file the hub writes: the peer a
/// user would pick instead (GLPK without the hub). Each is timed `runs` times; medians printed.
func optimizeBenchmark(runs: Int) async throws {
    let n = 96
    let start = ISO8601.date("2026-06-10T22:00:00Z")!
    let buy = (0..<n).map { t -> Double in
        let hour = t / 4
        return [0.09, 0.09, 0.08, 0.08, 0.08, 0.09, 0.11, 0.15, 0.16, 0.13, 0.10, 0.07, 0.06, 0.06, 0.08, 0.11, 0.16, 0.21, 0.25, 0.27, 0.24, 0.18, 0.13, 0.10][hour]
    }
    let pv = (0..<n).map { t in max(0, sin(Double(t - 26) / 52 * Double.pi)) * 6 * 0.25 }
    let load = (0..<n).map { t in (t / 4 >= 18 && t / 4 < 23 ? 2.5 : 0.8) * 0.25 }
    var problem = ScheduleProblem(
        start: start, seconds: 900, buy: buy, sell: Array(repeating: 0.05, count: n), load: load, pv: pv,
        importLimitKW: (0..<n).map { $0 / 4 >= 8 ? 9.2 : 6.9 })
    problem.batteries = (0..<3).map { i in
        ScheduleProblem.Battery(id: "battery-\(i)", capacityKWh: 5 + 5 * Double(i), chargeKW: 3, dischargeKW: 3, efficiency: 0.9, socMin: 0.1, socMax: 1, socStart: 0.3 + 0.2 * Double(i))
    }
    problem.chargers = (0..<4).map { i in
        ScheduleProblem.Charger(id: "charger-\(i)", energyKWh: 8 + 4 * Double(i), minKW: 1.4, maxKW: 3.7 + Double(i), from: 4 * i, deadline: 32 + 4 * i)
    }
    problem.loads = (0..<3).map { i in ScheduleProblem.DeferrableLoad(id: "load-\(i)", kw: 1 + Double(i) * 0.5, duration: 4 + 2 * i, earliest: 36, latest: 80) }

    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("enchufe-bench-optimize-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let lpFile = folder.appendingPathComponent("day.lp").path
    let reference = try problem.plan(writingLP: lpFile)
    let clock = ContinuousClock()
    var ours: [Duration] = []
    for _ in 0..<runs {
        let began = clock.now
        let plan = try problem.plan()
        ours.append(clock.now - began)
        precondition(abs(plan.cost - reference.cost) < 1e-6)
    }
    var peers: [Duration] = []
    var peerObjective = ""
    for _ in 0..<runs {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/glpsol")
        process.arguments = ["--lp", lpFile, "-o", folder.appendingPathComponent("solution.txt").path]
        process.standardOutput = FileHandle.nullDevice
        let began = clock.now
        try process.run()
        process.waitUntilExit()
        peers.append(clock.now - began)
        precondition(process.terminationStatus == 0, "glpsol failed")
        let solution = try String(contentsOfFile: folder.appendingPathComponent("solution.txt").path, encoding: .utf8)
        peerObjective = solution.split(separator: "\n").first { $0.hasPrefix("Objective:") }.map(String.init) ?? "?"
    }
    func median(_ d: [Duration]) -> Double {
        let s = d.map { Double($0.components.seconds) + Double($0.components.attoseconds) / 1e18 }.sorted()
        return s[s.count / 2]
    }
    let (a, b) = (median(ours), median(peers))
    print("optimize: 96 quarter-hours, 10 assets (3 batteries, 4 chargers with a minimum power, 3 deferrable loads): \(reference.violations.count) violations, cost \(String(format: "%.4f", reference.cost)) EUR, rule \(String(format: "%.4f", problem.baseline().cost)) EUR")
    print("optimize: hub (build + GLPK + read back) median \(String(format: "%.1f", a * 1000)) ms over \(runs) runs")
    print("optimize: glpsol --lp on the same program median \(String(format: "%.1f", b * 1000)) ms (\(peerObjective.trimmingCharacters(in: .whitespaces)))")
    print("optimize: hub / glpsol time ratio \(String(format: "%.2f", a / b))")
}
