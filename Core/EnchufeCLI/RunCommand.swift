import ArgumentParser
import EnchufeCore
import Foundation
import Logging
import ServiceLifecycle

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run every flow in the files or folders given until SIGINT/SIGTERM.")

    @Argument(help: "Flow files or folders (default: pipelines/).")
    var paths: [String] = []

    @OptionGroup var storeOptions: StoreOptions

    @Option(help: ArgumentHelp("Address to serve HTTP on (env ENCHUFE_HTTP; port 0: any free port).", valueName: "HOST:PORT"))
    var http: String?

    @OptionGroup var logOptions: LogOptions

    @OptionGroup var pluginOptions: PluginOptions

    @Option(help: ArgumentHelp("Close an HTTP connection that completes no request part (headers, a piece of body) for this long.", valueName: "DURATION"))
    var httpIdleTimeout = "30s"

    @Flag(help: ArgumentHelp("Operator routes, the status page's data and /metrics need an admin key even from this machine (env ENCHUFE_REQUIRE_KEYS=1; always so when --http is not loopback)."))
    var requireKeys = false

    @Option(help: "This instance's id in the deployment: letters, digits, '.', '-', '_' (default: host name and process id).")
    var instance: String?

    func validate() throws {
        // The id names the instance's MQTT clients and journal folders too.
        if let instance, instance.isEmpty || instance.count > 64 || !instance.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }) {
            throw ValidationError("--instance '\(instance)': use 1 to 64 letters, digits, '.', '-' or '_' (it names the instance's MQTT clients and journal folders)")
        }
    }

    func run() async throws {
        let logger = logOptions.bootstrap()
        let (host, port) = try Self.address(http ?? ProcessInfo.processInfo.environment["ENCHUFE_HTTP"] ?? "127.0.0.1:8080")

        let flowPaths = paths.isEmpty ? ["pipelines"] : paths
        let (registry, pluginProblems) = pluginOptions.registry()
        for problem in pluginProblems { logger.error("\(problem); the plugin's node type is not available") }
        // Every load (at start, and on each reload) reports its problems and hides its secrets in logs.
        let load: @Sendable () throws -> FlowSet = {
            let set = try FlowLoader(registry: registry).load(paths: flowPaths)
            HubLogHandler.redactor.withLock { $0.add(set.flows.flatMap(\.secretValues)) }
            for diagnostic in set.diagnostics { logger.error("\(diagnostic)") }
            for file in set.invalidFiles { logger.error("\(file) has errors: its flow is not run (or keeps running as it was); the other flows run") }
            return set
        }
        let set: FlowSet
        do {
            set = try load()
        } catch {
            throw CommandFailure("\(error)")
        }

        let store: any Store
        do {
            store = try await storeOptions.open()
        } catch {
            throw CommandFailure("store \(StoreOpener.redacted(storeOptions.url)): \(error)")
        }
        // The store runs around everything else: it serves the migrations before the services start,
        // and the heartbeat's last write after the flows drained; then it stops and is closed.
        try await store.whileRunning {
            do {
                let applied = try await store.migrate()
                if !applied.isEmpty { logger.info("store \(store.displayName): applied migrations \(applied.joined(separator: ", "))") }
                for note in await store.startupNotes() { logger.info("store \(store.displayName): \(note)") }
            } catch {
                throw CommandFailure("store \(StoreOpener.redacted(storeOptions.url)): \(error)")
            }
            if let password = Self.password(in: storeOptions.url) { HubLogHandler.redactor.withLock { $0.add([password]) } }
            let instanceID = instance ?? InstanceHeartbeat.defaultID
            do {
                try store.claimForOneInstance(instanceID)
            } catch {
                throw CommandFailure("\(error)")
            }
            let heartbeat = InstanceHeartbeat(id: instanceID, store: store, logger: logger)

            var environment = EngineEnvironment(store: store, logger: logger)
            environment.instance = instanceID
            // A store several instances can share: singleton sources run under leases. (A store that
            // serves one instance was claimed above: nothing to share.)
            environment.leases = store.isShared
            if environment.leases {
                if let instance {
                    environment.nodeInstance = instance
                } else if let others = try? await store.instances().filter({ $0.id != instanceID && Date().timeIntervalSince($0.heartbeatAt) <= 15 }), !others.isEmpty {
                    logger.warning(
                        "other instances share this store (\(others.map(\.id).joined(separator: ", "))) and this one has no --instance: its MQTT client ids and journals are not its own (a broker lets one client have an id); give every instance a stable --instance")
                }
            }
            let hub = Hub(flows: set.flows, registry: registry, environment: environment, load: load)
            hub.recordProblems(of: set)
            logger.info("running \(hub.flows.count) flow(s) on \(store.displayName): \(hub.flows.map(\.id).joined(separator: ", "))")
            let descriptors = ConnectionLimits.raiseDescriptorLimit()
            guard let idle = try? DurationText.parse(httpIdleTimeout), idle > .zero else {
                throw CommandFailure("--http-idle-timeout '\(httpIdleTimeout)' is not a duration such as 30s or 2m")
            }
            let limits = ConnectionLimits(idleTimeout: idle)
            logger.debug("file descriptors: \(descriptors); HTTP connections at most \(limits.connections), idle ones closed after \(DurationText.format(limits.idleTimeout))")
            let keysRequired = requireKeys || ["1", "true", "yes"].contains(ProcessInfo.processInfo.environment["ENCHUFE_REQUIRE_KEYS"]?.lowercased() ?? "")
            let app = HTTPServer.application(hub: hub, host: host, port: port, logger: logger, requireKeys: keysRequired, limits: limits) { boundPort in
                await heartbeat.serving(on: "\(host):\(boundPort)")
                logger.info("serving HTTP on http://\(host):\(boundPort) (instance \(instanceID))")
            }
            // Services stop in reverse order: no more reloads, HTTP stops taking requests, then the flows drain.
            let watcher = FlowWatcher(paths: flowPaths, hub: hub, logger: logger)
            var services: [any Service] = [heartbeat, hub, app, watcher]
            // Named instances on a shared store take over what a dead one left (MQTT sessions, journals).
            if environment.nodeInstance != nil { services.append(InstanceAdoption(hub: hub)) }
            let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            try await group.run()
        }
        logger.info("stopped")
    }

    static func address(_ text: String) throws -> (String, Int) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            throw CommandFailure("'\(text)' is not HOST:PORT (e.g. 127.0.0.1:8080)")
        }
        return (String(text[..<colon]), port)
    }

    static func password(in url: String) -> String? {
        guard let scheme = url.range(of: "://"), let at = url[scheme.upperBound...].firstIndex(of: "@") else { return nil }
        let userinfo = url[scheme.upperBound..<at]
        return userinfo.firstIndex(of: ":").map { String(userinfo[userinfo.index(after: $0)...]) }
    }
}
