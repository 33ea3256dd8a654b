import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Every flow of one `enchufe run`, as one service. On graceful shutdown (SIGTERM/SIGINT) the
/// sources stop, what is in flight drains through the flows for at most `drainTimeout`, and what
/// could not be committed by then is abandoned unacknowledged (its sources will deliver it again).
///
/// Flows can be reloaded while the hub runs (`reload`): only the flows whose file changed are
/// drained and restarted; a file that no longer validates leaves its flows running as they were.
public final class Hub: Service, Sendable {
    public let registry: NodeRegistry
    public let drainTimeout: Duration
    /// Loads the flows again from where they came from (for `reloadFromSource`), if they came from files.
    private let load: (@Sendable () throws -> FlowSet)?
    private let stopSignal = OneShot()
    private let starts = Mailbox<FlowRunner>()
    private let state: Mutex<State>
    private let reloads = Mutex<Task<ReloadReport, Never>?>(nil)

    struct State {
        var environment: EngineEnvironment
        var runners: [FlowRunner] = []
        /// Flows that were valid but could not start, each reported once.
        var notStarted: [FlowStartError] = []
        /// The fingerprints of the flows that could not start: unchanged, they are not tried again.
        var failedFingerprints: [String: String] = [:]
        /// Problems of flow files that are not run (or whose last change was refused), by file.
        var fileProblems: [String: [String]] = [:]
        var startedAt: [String: Date] = [:]
        var lastReload: ReloadReport?
    }

    public init(
        flows: [FlowDefinition], registry: NodeRegistry, environment: EngineEnvironment, drainTimeout: Duration = .seconds(4),
        load: (@Sendable () throws -> FlowSet)? = nil
    ) {
        var environment = environment
        environment.redactor.add(flows.flatMap(\.secretValues))
        self.registry = registry
        self.drainTimeout = drainTimeout
        self.load = load
        var state = State(environment: environment)
        for flow in flows {
            switch Self.makeRunner(flow, registry: registry, environment: environment) {
            case .success(let runner):
                state.runners.append(runner)
                state.startedAt[flow.id] = environment.clock.now()
            case .failure(let error):
                state.notStarted.append(error)
                state.failedFingerprints[flow.id] = flow.fingerprint
            }
        }
        self.state = Mutex(state)
    }

    static func makeRunner(_ flow: FlowDefinition, registry: NodeRegistry, environment: EngineEnvironment) -> Result<FlowRunner, FlowStartError> {
        do {
            return .success(try FlowRunner(definition: flow, registry: registry, environment: environment))
        } catch let error as FlowStartError {
            environment.logger.error("\(error.description); the other flows run", metadata: ["flow": .string(flow.id)])
            return .failure(error)
        } catch {
            return .failure(FlowStartError(flow: flow.id, node: "", reason: "\(error)"))
        }
    }

    public var environment: EngineEnvironment { state.withLock { $0.environment } }
    /// The flows running now.
    public var flows: [FlowDefinition] { state.withLock { $0.runners.map(\.definition) } }
    public var notStarted: [FlowStartError] { state.withLock { $0.notStarted } }
    var runners: [FlowRunner] { state.withLock { $0.runners } }

    /// Remembers the problems of the flow files that are not run, to show them in the API.
    public func recordProblems(of set: FlowSet) {
        state.withLock { $0.fileProblems = Self.problemsByFile(set) }
    }

    static func problemsByFile(_ set: FlowSet) -> [String: [String]] {
        var problems: [String: [String]] = [:]
        for file in set.invalidFiles { problems[file] = [] }
        for d in set.errors { problems[d.location.file, default: []].append(d.description) }
        return problems
    }

    public func run() async throws {
        await withGracefulShutdownHandler {
            await self.runFlows(untilStopped: true)
        } onGracefulShutdown: {
            self.stop()
        }
    }

    /// Runs every flow until `stop()` drained them (or the drain timed out), or every source ended.
    public func runFlows() async { await runFlows(untilStopped: false) }

    /// Runs the flows, and those a reload starts, until stopped (or, unless `untilStopped`, until no
    /// flow runs any more).
    func runFlows(untilStopped: Bool) async {
        enum Event { case flowDone, start(FlowRunner), noMoreStarts, watchdogCancelled, drainTimedOut }
        await withTaskGroup(of: Event.self) { group in
            var running = 0
            func launch(_ runner: FlowRunner) {
                running += 1
                group.addTask {
                    await runner.run()
                    return .flowDone
                }
            }
            for runner in runners { launch(runner) }
            group.addTask {
                await self.stopSignal.wait()
                do { try await Task.sleep(for: self.drainTimeout) } catch { return .watchdogCancelled }
                return .drainTimedOut
            }
            let nextStart: @Sendable () async -> Event? = { await self.starts.take().map(Event.start) }
            group.addTask { await nextStart() ?? .noMoreStarts }
            var idle: Bool { running == 0 && (!untilStopped || stopSignal.isFired) }
            if idle { group.cancelAll() }
            while let event = await group.next() {
                switch event {
                case .flowDone:
                    running -= 1
                    if idle { group.cancelAll() }
                case .start(let runner):
                    if stopSignal.isFired {
                        runner.finished.fire()
                    } else {
                        launch(runner)
                        group.addTask { await nextStart() ?? .noMoreStarts }
                    }
                case .noMoreStarts:
                    // Stopped: if no flow runs any more, the watchdog need not wait.
                    if idle { group.cancelAll() }
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
        starts.close()
        for runner in runners { runner.stop() }
    }

    /// Samples queue depths into the metrics (called before `/metrics` is rendered).
    public func recordQueueDepths() {
        for runner in runners { runner.recordQueueDepths() }
    }

    // MARK: Reload

    /// What a reload did, flow by flow.
    public struct ReloadReport: Sendable {
        public var at: Date
        public var started: [String] = []
        public var restarted: [String] = []
        public var stopped: [String] = []
        public var unchanged: [String] = []
        /// Flows left running as they were because their file's change was refused, with the reasons.
        public var refused: [String: [String]] = [:]
        /// Flows that could not start (the old one, if any, keeps running).
        public var notStarted: [FlowStartError] = []
        /// The tenants of the flows named here, before and after the reload, so that each tenant
        /// is shown its own flows only.
        public var tenants: [String: Set<String>] = [:]

        public var changed: Bool { !(started.isEmpty && restarted.isEmpty && stopped.isEmpty && refused.isEmpty && notStarted.isEmpty) }
    }

    /// Loads the flows again (with the loader given at creation) and applies them.
    public func reloadFromSource() async throws -> ReloadReport {
        guard let load else { throw PermanentError("this hub's flows were not loaded from files: there is nothing to reload") }
        return await reload(try load())
    }

    /// Applies `set`: new flows start, flows whose fingerprint changed are drained and restarted,
    /// flows that are gone are drained and stopped. A file with errors changes nothing of its flows.
    /// Reloads run one at a time.
    public func reload(_ set: FlowSet) async -> ReloadReport {
        let previous = reloads.withLock { current -> Task<ReloadReport, Never> in
            let before = current
            let task = Task { [self] in
                _ = await before?.value
                return await apply(set)
            }
            current = task
            return task
        }
        return await previous.value
    }

    private func apply(_ set: FlowSet) async -> ReloadReport {
        let registry = self.registry
        let problems = Self.problemsByFile(set)
        let (current, environment, failed) = state.withLock { s -> ([FlowRunner], EngineEnvironment, [String: String]) in
            s.environment.redactor.add(set.flows.flatMap(\.secretValues))
            return (s.runners, s.environment, s.failedFingerprints)
        }
        var report = ReloadReport(at: environment.clock.now())
        let wanted = Dictionary(set.flows.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        for flow in current.map(\.definition) + set.flows { report.tenants[flow.id, default: []].insert(flow.tenant) }
        let logger = environment.logger

        // Flows of files that were refused keep running as they were.
        for runner in current where problems[runner.definition.file] != nil {
            report.refused[runner.definition.id] = problems[runner.definition.file]
            logger.error("flow '\(runner.definition.id)': \(runner.definition.file) has errors; the flow keeps running as it was", metadata: ["flow": .string(runner.definition.id)])
        }
        var replacements: [(old: FlowRunner?, new: FlowRunner)] = []
        for runner in current where problems[runner.definition.file] == nil {
            guard let flow = wanted[runner.definition.id] else {
                replacements.append((runner, runner))  // stop only
                continue
            }
            if flow.fingerprint == runner.definition.fingerprint {
                report.unchanged.append(flow.id)
                continue
            }
            switch Self.makeRunner(flow, registry: registry, environment: environment) {
            case .success(let new): replacements.append((runner, new))
            case .failure(let error): report.notStarted.append(error)
            }
        }
        let running = Set(current.map(\.definition.id))
        var notStarted: [FlowStartError] = []
        for flow in set.flows where !running.contains(flow.id) && failed[flow.id] != flow.fingerprint {
            switch Self.makeRunner(flow, registry: registry, environment: environment) {
            case .success(let new): replacements.append((nil, new))
            case .failure(let error):
                report.notStarted.append(error)
                notStarted.append(error)
            }
        }
        for (old, new) in replacements {
            if let old {
                old.stop()
                await old.finishedOrAbandoned(after: drainTimeout, logger: logger)
            }
            if old === new {
                state.withLock { $0.runners.removeAll { $0 === new } }
                report.stopped.append(new.definition.id)
                logger.info("flow '\(new.definition.id)' stopped: it is no longer in the flow files")
                continue
            }
            state.withLock { s in
                if let old, let i = s.runners.firstIndex(where: { $0 === old }) { s.runners[i] = new } else { s.runners.append(new) }
                s.startedAt[new.definition.id] = environment.clock.now()
            }
            if old == nil { report.started.append(new.definition.id) } else { report.restarted.append(new.definition.id) }
            logger.info("flow '\(new.definition.id)' \(old == nil ? "started" : "restarted with its changes")", metadata: ["flow": .string(new.definition.id)])
            starts.put(new)
        }
        state.withLock { s in
            s.fileProblems = problems
            let ids = Set(s.runners.map(\.definition.id))
            for error in notStarted { s.failedFingerprints[error.flow] = wanted[error.flow]?.fingerprint }
            let retried = Set(notStarted.map(\.flow))
            s.notStarted = s.notStarted.filter { !ids.contains($0.flow) && wanted[$0.flow] != nil && !retried.contains($0.flow) } + notStarted
            s.lastReload = report
        }
        return report
    }

    // MARK: Status

    /// Every flow with its nodes' status, then the flows that are not run and why; with a tenant,
    /// only that tenant's flows (and nothing of what was skipped or reloaded).
    public func status(tenant: String?) -> HubStatus {
        let (runners, notStarted, problems, startedAt, lastReload, now) = state.withLock {
            ($0.runners, $0.notStarted, $0.fileProblems, $0.startedAt, $0.lastReload, $0.environment.clock.now())
        }
        let flows = runners.filter { tenant == nil || $0.definition.tenant == tenant }.map { runner in
            runner.status(startedAt: startedAt[runner.definition.id], reloadErrors: problems[runner.definition.file])
        }
        guard tenant == nil else { return HubStatus(flows: flows, skipped: [], lastReload: nil, at: now) }
        let runningFiles = Set(runners.map(\.definition.file))
        let skipped = notStarted.map { HubStatus.Skipped.flow($0.flow, node: $0.node, reason: $0.reason) }
            + problems.sorted(by: { $0.key < $1.key }).filter { !runningFiles.contains($0.key) }.map { HubStatus.Skipped.file($0.key, reasons: $0.value) }
        return HubStatus(flows: flows, skipped: skipped, lastReload: lastReload, at: now)
    }

    /// The Prometheus text with only the samples of `tenant`'s flows, and those about no flow.
    func metricsText(_ text: String, tenant: String) -> String {
        let own = Set(runners.filter { $0.definition.tenant == tenant }.map(\.definition.id))
        return text.split(separator: "\n", omittingEmptySubsequences: false).filter { line in
            guard !line.hasPrefix("#"), let at = line.range(of: "flow=\"") else { return true }
            return own.contains(String(line[at.upperBound...].prefix { $0 != "\"" }))
        }.joined(separator: "\n")
    }

    /// The running flow `id`, if the tenant (nil: any) may see it.
    func runner(_ id: String, tenant: String?) -> FlowRunner? {
        runners.first { $0.definition.id == id && (tenant == nil || $0.definition.tenant == tenant) }
    }

    /// The live messages of `flow`/`node`.
    public func tap(flow: String, node: String, tenant: String?) -> Tap? {
        runner(flow, tenant: tenant)?.tap(node)
    }

    /// Sends a dead letter's message back into the node that failed it. When what derives from it
    /// is committed (or dead-lettered again, under a new id), the letter is marked replayed.
    public func replay(_ letter: DeadLetter) async throws -> DeliveryOutcome {
        guard let runner = runner(letter.flow, tenant: letter.tenant) else {
            throw PermanentError("flow '\(letter.flow)' is not running: the dead letter cannot be replayed now")
        }
        var message = Message(json: letter.message)
        message.attributes["replayed_dead_letter"] = String(letter.id)
        let outcome = await (try await runner.inject(message, into: letter.node)).outcome()
        if outcome == .committed {
            try await environment.store.markDeadLetterReplayed(id: letter.id, at: environment.clock.now())
        }
        return outcome
    }
}

/// Values handed from any task to one taker at a time; `take` returns nil once closed or cancelled.
final class Mailbox<Value: Sendable>: Sendable {
    private struct State {
        var values: [Value] = []
        var taker: CheckedContinuation<Value?, Never>?
        var closed = false
    }

    private let state = Mutex(State())

    func put(_ value: Value) {
        let taker = state.withLock { s -> CheckedContinuation<Value?, Never>? in
            if let t = s.taker {
                s.taker = nil
                return t
            }
            s.values.append(value)
            return nil
        }
        taker?.resume(returning: value)
    }

    func close() {
        let taker = state.withLock { s -> CheckedContinuation<Value?, Never>? in
            s.closed = true
            defer { s.taker = nil }
            return s.taker
        }
        taker?.resume(returning: nil)
    }

    func take() async -> Value? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Value?, Never>) in
                let now = state.withLock { s -> Value?? in
                    if !s.values.isEmpty { return .some(s.values.removeFirst()) }
                    if s.closed || Task.isCancelled { return .some(nil) }
                    s.taker = c
                    return nil
                }
                if let now { c.resume(returning: now) }
            }
        } onCancel: {
            let taker = state.withLock { s -> CheckedContinuation<Value?, Never>? in
                defer { s.taker = nil }
                return s.taker
            }
            taker?.resume(returning: nil)
        }
    }
}
