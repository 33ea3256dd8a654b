import ArgumentParser
import EnchufeCore
import Foundation

struct TestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Run flow tests (NAME.test.yaml beside NAME.yaml): a line per case, then N passed, N failed.")

    @Argument(help: "Test files, flow files or folders (default: pipelines/).")
    var paths: [String] = []

    @Option(help: "Real time one case may take before it fails.")
    var timeout: String = "60s"

    @OptionGroup var pluginOptions: PluginOptions

    func run() async throws {
        let limit: Duration
        do { limit = try DurationText.parse(timeout) } catch { throw CommandFailure("--timeout: \(error)") }
        let tests = FlowTests(registry: pluginOptions.registryReportingProblems(), timeout: limit)
        let results: [FlowTestResult]
        do {
            results = try await tests.run(paths: paths.isEmpty ? ["pipelines"] : paths) { result in
                print("\(result.passed ? "ok  " : "FAIL") \(result.location.file):\(result.location.line) \(result.name)")
                for failure in result.failures { print("     \(failure)") }
            }
        } catch {
            throw CommandFailure("\(error)")
        }
        let failed = results.filter { !$0.passed }.count
        print("\(results.count - failed) passed, \(failed) failed")
        if results.isEmpty { print("no flow tests found (NAME.test.yaml beside NAME.yaml)") }
        if failed > 0 { throw ExitCode(1) }
    }
}
