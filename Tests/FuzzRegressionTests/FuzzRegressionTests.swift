import Foundation
import FuzzTargets
import Testing

/// Every saved fuzz input — the seeds, and each input that once crashed the hub (kept in
/// `Fuzz/Regressions/TARGET/`) — goes through its target in the ordinary test build, so a crash
/// found once stays fixed even where the fuzzer does not run.
@Suite struct FuzzRegressionTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz")

    static var inputs: [(target: String, file: String)] {
        var found: [(String, String)] = []
        for folder in ["Seeds", "Regressions"] {
            let base = root.appendingPathComponent(folder)
            for target in (try? FileManager.default.contentsOfDirectory(atPath: base.path)) ?? [] {
                for file in (try? FileManager.default.contentsOfDirectory(atPath: base.appendingPathComponent(target).path)) ?? [] where !file.hasPrefix(".") {
                    found.append((target, "\(folder)/\(target)/\(file)"))
                }
            }
        }
        return found.sorted { $0.1 < $1.1 }
    }

    @Test func everySavedInputHasATarget() {
        #expect(Self.inputs.count > 20)
        for (target, file) in Self.inputs { #expect(FuzzTargets.all[target] != nil, "\(file)") }
        #expect(Set(Self.inputs.map(\.target)) == Set(FuzzTargets.all.keys), "every target has seeds")
    }

    @Test func everySavedInputRunsThroughItsTarget() throws {
        for (target, file) in Self.inputs {
            let data = try Data(contentsOf: Self.root.appendingPathComponent(file))
            FuzzTargets.all[target]?(Array(data))
        }
    }
}
