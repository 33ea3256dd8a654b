import AEMET
import ArgumentParser
import Datadis
import HTTPPull
import EnchufeCore
import Markets
import Optimizer
import MQTT
import Postgres
import REData
import Simulator
import Synchronization

/// The `enchufe` command line. Build a binary with more node types (from another Swift package)
/// by calling `EnchufeCLI.main(extraNodeTypes:)` from its `main.swift`.
public enum EnchufeCLI {
    /// Runs the command line of the process's arguments with the built-in node types and
    /// `extraNodeTypes` (which may not reuse a built-in type's name).
    public static func main(extraNodeTypes: [NodeSpec] = []) async {
        Enchufe.extraNodeTypes.withLock { $0 = extraNodeTypes }
        await Enchufe.main()
    }

    /// The node types every build has: Core's and each connector module's.
    public static var builtInNodeTypes: [NodeSpec] { Enchufe.builtIn }
}

struct Enchufe: AsyncParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "enchufe",
        abstract: "An integration hub for Spanish energy communities.",
        version: version,
        subcommands: [
            RunCommand.self, ValidateCommand.self, NodesCommand.self, SchemaCommand.self, DocsCommand.self,
            TestCommand.self, MigrateCommand.self, DeadLettersCommand.self, KeysCommand.self, TapCommand.self,
        ])

    /// Every node type of this build: Core's, each connector module's, and those the binary's
    /// `main` added.
    static var registry: NodeRegistry {
        var registry = NodeRegistry(builtIn)
        for spec in extraNodeTypes.withLock({ $0 }) where registry.spec(spec.type) == nil { registry.register(spec) }
        return registry
    }

    static let builtIn = CoreNodes.specs + SimulatorModule.specs + PostgresModule.specs + MQTTModule.specs + REDataModule.specs + MarketsModule.specs + OptimizerModule.specs
        + AEMETModule.specs + DatadisModule.specs + HTTPModule.specs

    static let extraNodeTypes = Mutex<[NodeSpec]>([])

    /// Every store backend of this build.
    static let stores: StoreOpener = {
        var opener = StoreOpener()
        PostgresModule.register(in: &opener)
        return opener
    }()
}
