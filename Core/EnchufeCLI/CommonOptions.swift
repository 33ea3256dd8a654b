import ArgumentParser
import EnchufeCore
import Foundation
import Logging

/// `--store URL`, shared by every command that uses the store.
struct StoreOptions: ParsableArguments {
    static let defaultURL = "sqlite:var/enchufe.sqlite"

    @Option(name: .long, help: ArgumentHelp("Store URL: sqlite:PATH or postgres://user:pass@host:port/db (env ENCHUFE_STORE).", valueName: "URL"))
    var store: String?

    var url: String {
        store ?? ProcessInfo.processInfo.environment["ENCHUFE_STORE"].flatMap { $0.isEmpty ? nil : $0 } ?? Self.defaultURL
    }

    func open() async throws -> any Store {
        try await Enchufe.stores.open(url)
    }

    /// Runs `body` with the store open and running (`Store.whileRunning`), migrated first unless
    /// `migrated` is false; the store is closed afterwards.
    func withStore<T>(migrated: Bool = true, _ body: (any Store) async throws -> T) async throws -> T {
        let store = try await open()
        return try await store.whileRunning {
            if migrated { try await store.migrate() }
            return try await body(store)
        }
    }
}

/// `--log-format` and `--log-level`.
/// Where Lua node types are (`*.lua` files each declaring one): they join the built-in ones.
struct PluginOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Folder of Lua node types (*.lua).", valueName: "DIR"))
    var plugins: String = "plugins"

    /// The built-in node types and the plugins folder's, with the problems of its files.
    func registry() -> (NodeRegistry, [Diagnostic]) {
        var registry = Enchufe.registry
        let (specs, problems) = LuaNodeTypes.load(folder: plugins, taken: Set(registry.specs.map(\.type)))
        for spec in specs { registry.register(spec) }
        return (registry, problems)
    }

    /// The registry, after printing the plugins' problems to stderr.
    func registryReportingProblems() -> NodeRegistry {
        let (registry, problems) = registry()
        for problem in problems { FileHandle.standardError.write(Data("\(problem)\n".utf8)) }
        return registry
    }
}

struct LogOptions: ParsableArguments {
    @Option(name: .long, help: "Log format: text or json.")
    var logFormat: HubLogHandler.Format = .text

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    func bootstrap() -> Logger {
        let format = logFormat, level = logLevel
        LoggingSystem.bootstrap { label in HubLogHandler(label: label, format: format, level: level) }
        return Logger(label: "enchufe")
    }
}

extension HubLogHandler.Format: ExpressibleByArgument {}
extension Logger.Level: @retroactive ExpressibleByArgument {}

/// An error for the person at the terminal: printed as it is, exit code 1.
struct CommandFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
