import AEMET
import ArgumentParser
import Datadis
import HTTPPull
import EnchufeCore
import MQTT
import Postgres
import REData
import Simulator

@main
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

    /// Every node type of this build: Core's and each connector module's.
    static let registry = NodeRegistry(CoreNodes.specs + Simulator.specs + PostgresModule.specs + MQTTModule.specs + REDataModule.specs
            + AEMETModule.specs + DatadisModule.specs
            + HTTPModule.specs)

    /// Every store backend of this build.
    static let stores: StoreOpener = {
        var opener = StoreOpener()
        PostgresModule.register(in: &opener)
        return opener
    }()
}
