import ArgumentParser
import EnchufeCore
import Foundation

struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Load and check flows without running them; every problem as FILE:LINE:COL: error: MESSAGE.")

    @Argument(help: "Flow files or folders (default: pipelines/).")
    var paths: [String] = []

    @OptionGroup var pluginOptions: PluginOptions

    func run() throws {
        let (registry, pluginProblems) = pluginOptions.registry()
        for problem in pluginProblems { print(problem) }
        let set: FlowSet
        do {
            set = try FlowLoader(registry: registry).load(paths: paths.isEmpty ? ["pipelines"] : paths)
        } catch {
            throw CommandFailure("\(error)")
        }
        for diagnostic in set.diagnostics { print(diagnostic) }
        if !pluginProblems.isEmpty && set.errors.isEmpty {
            print("\(pluginProblems.count) error(s) in the plugins folder \(pluginOptions.plugins)")
            throw ExitCode(1)
        }
        let errors = set.errors.count + pluginProblems.count
        if errors == 0 {
            print("\(set.flows.count) flow(s) valid in \(set.files.count) file(s)")
        } else {
            print("\(errors) error(s) in \(set.invalidFiles.count) of \(set.files.count) file(s)")
            throw ExitCode(1)
        }
    }
}
