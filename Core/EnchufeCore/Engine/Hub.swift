import Foundation
import Logging
import ServiceLifecycle

/// Every flow of one `enchufe run`, as one service. On graceful shutdown (SIGTERM/SIGINT) the
/// sources stop, what is in flight drains through the flows for at most `drainTimeout`, and what
/// could not be committed by then is abandoned unacknowledged (its sources will deliver it again).
public final class Hub: Service, Sendable {
    public let environment: EngineEnvironment
    public let flows: [FlowDefinition]
    /// Flows that were valid but could not start, each reported once.
    public let notStarted: [FlowStartError]
    public let drainTimeout: Duration
    private let runners: [FlowRunner]
    private let stopSignal = StopSignal()

    public init(flows: [FlowDefinition], registry: NodeRegistry, environment: EngineEnvironment, drainTimeout: Duration = .seconds(4)) {
        var runners: [FlowRunner] = []
        var notStarted: [FlowStartError] = []
        var environment = environment
        environment.redactor.add(flows.flatMap(\.secretValues))
        for flow in flows {
            do {
                runners.append(try FlowRunner(definition: flow, registry: registry, environment: environment))
            } catch let error as FlowStartError {
                environment.logger.error("\(error.description); the other flows run", metadata: ["flow": .string(flow.id)])
                notStarted.append(error)
            } catch {
                notStarted.append(FlowStartError(flow: flow.id, node: "", reason: "\(error)"))
            }
        }
        self.environment = environment
        self.flows = runners.map(\.definition)
        self.notStarted = notStarted
        self.runners = runners
        self.drainTimeout = drainTimeout
    }

    public func run() async throws {
        await withGracefulShutdownHandler {
            await self.runFlows()
        } onGracefulShutdown: {
            self.stop()
        }
        // Flows that end by themselves leave the hub serving until it is told to stop.
        if !stopSignal.isFired { try? await gracefulShutdown() }
    }

    /// Runs every flow until `stop()` drained them (or the drain timed out), or every source ended.
    public func runFlows() async {
        enum Ending { case flowDone, watchdogCancelled, drainTimedOut }
        await withTaskGroup(of: Ending.self) { group in
            for runner in runners {
                group.addTask {
                    await runner.run()
                    return .flowDone
                }
            }
            group.addTask {
                await self.stopSignal.wait()
                do { try await Task.sleep(for: self.drainTimeout) } catch { return .watchdogCancelled }
                return .drainTimedOut
            }
            var running = runners.count
            if running == 0 { group.cancelAll() }
            for await ending in group {
                switch ending {
                case .flowDone:
                    running -= 1
                    if running == 0 { group.cancelAll() }
                case .drainTimedOut where running > 0:
                    environment.logger.warning("flows did not drain within \(DurationText.format(drainTimeout)); what is still in flight is not acknowledged and will be delivered again")
                    group.cancelAll()
                default:
                    break
                }
            }
        }
    }

    /// Stops every source; the flows drain.
    public func stop() {
        stopSignal.fire()
        for runner in runners { runner.stop() }
    }

    /// Samples queue depths into the metrics (called before `/metrics` is rendered).
    public func recordQueueDepths() {
        for runner in runners { runner.recordQueueDepths() }
    }
}
