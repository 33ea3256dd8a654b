import ArgumentParser
import EnchufeCore
import Foundation

struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Load and check flows without running them; every problem as FILE:LINE:COL: error: MESSAGE.")

    @Argument(help: "Flow files or folders (default: pipelines/).")
    var paths: [String] = []

    func run() throws {
        let set: FlowSet
        do {
            set = try FlowLoader(registry: Enchufe.registry).load(paths: paths.isEmpty ? ["pipelines"] : paths)
        } catch {
            throw CommandFailure("\(error)")
        }
        for diagnostic in set.diagnostics { print(diagnostic) }
        let errors = set.errors.count
        if errors == 0 {
            print("\(set.flows.count) flow(s) valid in \(set.files.count) file(s)")
        } else {
            print("\(errors) error(s) in \(set.invalidFiles.count) of \(set.files.count) file(s)")
            throw ExitCode(1)
        }
    }
}
