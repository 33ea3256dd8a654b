import Foundation
import NIOCore

/// The hub's storage, composed of one protocol per role: readings, supplies, checkpoints, named
/// values, dead letters, leases and instances, API keys and the audit log, alerts, forecasts. SQLite implements it in
/// Core; PostgreSQL in its module. Every backend passes the same conformance suite
/// (Tests/StoreConformance). Code that needs one role takes that role (`any NamedValueStore`), so
/// what it touches is plain from its signature.
public protocol Store: ReadingStore, SupplyStore, CheckpointStore, NamedValueStore, DeadLetterStore, LeaseStore, AccessStore, AlertStore, ForecastStore {
    /// The store's URL with any password hidden.
    var displayName: String { get }

    /// Creates or upgrades the schema; returns the migrations it applied.
    @discardableResult func migrate() async throws -> [String]
    /// Runs what the store does in the background (PostgreSQL: its connection pool) until the task
    /// is cancelled; the store serves requests only while it runs. A store with nothing to run
    /// (SQLite) returns at once. Whoever opens a store runs it: `whileRunning` around a piece of
    /// work, `enchufe run` around its whole service group (so the store stops after the flows
    /// drained and the instance took itself out).
    func run() async
    /// Throws if the store cannot be reached.
    func ping() async throws
    /// Lets go of the store (SQLite: its file); after `run()` has ended.
    func close() async throws
    /// Facts about the store worth a line at startup (engine features in use).
    func startupNotes() async -> [String]
    /// Whether several hub instances can share the store (PostgreSQL: singleton sources then run
    /// under leases) or it serves one instance (a SQLite file).
    var isShared: Bool { get }
    /// Makes this process the one instance on a store that serves one (refused, saying which
    /// instance has it, while another runs); nothing to do on a shared store.
    func claimForOneInstance(_ instance: String) throws
}

extension Store {
    public func run() async {}

    /// Runs `body` while the store runs (`run()` in a child task), then stops the store and closes
    /// it, whether `body` returned or threw.
    public func whileRunning<T>(_ body: () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: Void.self, returning: T.self) { group in
            group.addTask { await self.run() }
            let result: Result<T, any Error>
            do { result = .success(try await body()) } catch { result = .failure(error) }
            group.cancelAll()
            try await group.waitForAll()
            try await close()
            return try result.get()
        }
    }

    public func startupNotes() async -> [String] { [] }
    public var isShared: Bool { true }
    public func claimForOneInstance(_ instance: String) throws {}
}

/// Readings with their upsert rules and change sequence.
public protocol ReadingStore: Sendable {
    /// Inserts or updates readings, unique on (tenant, series, quantity, ts): the same value and
    /// quality changes nothing; a changed value bumps `revision`; a lower-quality value (estimated,
    /// forecast) never replaces a measured one. Every insert or change takes the next `seq`.
    /// Under a lease (`Lease.current`, readings of a singleton source), nothing is written unless
    /// the lease is still held with its fence (`LeaseLost`).
    func upsert(_ readings: [Reading]) async throws -> UpsertSummary
    func readings(_ query: ReadingQuery) async throws -> [StoredReading]
    /// Writes the readings of `query` as rows of the `csv` export (`ExportWriter`), byte for byte, in
    /// chunks, awaiting `write` for each: a slow reader slows the query and memory stays flat. A
    /// store that can have its database render the rows does (PostgreSQL, in one streamed query, as
    /// its `COPY` would); the default formats `readingPages(query)`.
    func writeCSV(_ query: ReadingQuery, to write: (ByteBuffer) async throws -> Void) async throws
    /// Readings of a tenant inserted or changed after `seq`, in `seq` order.
    func changes(tenant: String, after seq: Int64, limit: Int) async throws -> [StoredReading]
    /// Sums of readings, computed by the database (`ReadingTotalsQuery`); in (series, quantity,
    /// start) order. Nothing for an empty list of series or quantities.
    func totals(_ query: ReadingTotalsQuery) async throws -> [ReadingTotal]
}

/// Supply points (CUPS) and their validity periods.
public protocol SupplyStore: Sendable {
    func saveSupply(_ supply: SupplyPoint) async throws
    func supplies(tenant: String) async throws -> [SupplyPoint]
    /// The tenants with at least one supply, sorted (what the operator's community dashboard lists).
    func supplyTenants() async throws -> [String]
}

/// Where nodes keep their progress (`CheckpointKey`: tenant, flow, node, key).
public protocol CheckpointStore: Sendable {
    func checkpoint(_ key: CheckpointKey) async throws -> Checkpoint?
    /// Saves a checkpoint; inside a singleton source's task (`Lease.current` set), only while that
    /// lease is still held with its fence, else `LeaseLost`.
    func saveCheckpoint(_ key: CheckpointKey, value: String) async throws
}

/// Values kept under a name (`NamedKey`), each until it expires or for good: the queries a Datadis
/// account sent, a webhook's used HMAC signatures and idempotency keys' first answers.
public protocol NamedValueStore: Sendable {
    /// The value of `key`, unless there is none or it expired before `now`.
    func value(_ key: NamedKey, now: Date) async throws -> String?
    /// Gives `key` the value (and expiry; nil: never), whatever it held. Inside a singleton source's
    /// task (`Lease.current` set), only while that lease is still held with its fence, else
    /// `LeaseLost` (the Datadis ledger: an instance that lost its lease must not enter, and so not
    /// send, a query).
    func setValue(_ key: NamedKey, _ value: String, expiresAt: Date?) async throws
    /// Gives `key` the value unless one that has not expired holds it; true when this call set it.
    /// Atomic: of concurrent claims of one key, exactly one wins.
    func claim(_ key: NamedKey, value: String, expiresAt: Date?) async throws -> Bool
    /// Removes `key`'s value (a request it stood for was not taken after all).
    func removeValue(_ key: NamedKey) async throws
    /// Removes the values that expired before `now`; returns how many.
    func purgeExpiredValues(now: Date) async throws -> Int
}

/// Forecasts, every issue kept (`Forecast`), in a table of their own.
public protocol ForecastStore: Sendable {
    /// Stores forecasts; one with the same series, quantity, time, model and issue is replaced.
    /// Refuses the whole batch, writing nothing, if one cannot be stored (`Forecast.problem`).
    func saveForecasts(_ forecasts: [Forecast]) async throws
    /// The forecasts of `query` in (series, quantity, ts, model, issued_at) order.
    func forecasts(_ query: ForecastQuery) async throws -> [Forecast]
    /// Deletes the forecasts issued before `before`; returns how many.
    func purgeForecasts(issuedBefore before: Date) async throws -> Int
}

/// The `alert` nodes' alerts: their state, and the changes of state (raised, cleared).
public protocol AlertStore: Sendable {
    func alert(_ key: AlertKey) async throws -> AlertState?
    /// Saves `state` (its `version` bumped) with the state changes that led to it, if the stored
    /// state is still the one read (`state.version`; 0: none stored yet); false, saving nothing,
    /// when another writer saved first. Of concurrent saves from one version exactly one wins.
    func saveAlert(_ state: AlertState, events: [AlertEvent]) async throws -> Bool
    /// Every alert of a tenant (all tenants when nil), raised ones first, then by name and series.
    func alerts(tenant: String?) async throws -> [AlertState]
    /// The latest changes of state, newest first.
    func alertEvents(tenant: String?, limit: Int) async throws -> [AlertEvent]
    /// Deletes changes of state recorded before `before`; returns how many.
    func purgeAlertEvents(before: Date) async throws -> Int
}

/// Messages that failed with no `errors` wire, kept with the reason.
public protocol DeadLetterStore: Sendable {
    func addDeadLetter(_ letter: NewDeadLetter) async throws -> Int64
    /// Newest first; all tenants when `tenant` is nil.
    func deadLetters(tenant: String?, limit: Int) async throws -> [DeadLetter]
    func deadLetter(id: Int64) async throws -> DeadLetter?
    func markDeadLetterReplayed(id: Int64, at: Date) async throws
    /// Deletes dead letters (all tenants when nil); returns how many.
    func purgeDeadLetters(tenant: String?) async throws -> Int
}

/// What several instances of a deployment share: the leases of singleton sources and the
/// instances' heartbeats.
public protocol LeaseStore: Sendable {
    /// Takes the lease `name` for `holder` for `ttl` (or keeps it, renewed, if `holder` has it);
    /// nil while another holder's lease has not expired. Expiry is the store's clock.
    func acquireLease(_ name: String, holder: String, ttl: Duration) async throws -> Lease?
    /// Extends a lease still held with its fence; false if it changed hands.
    func renewLease(_ lease: Lease, ttl: Duration) async throws -> Bool
    /// Gives a lease up (a clean stop), so that another instance need not wait for it to expire.
    func releaseLease(_ lease: Lease) async throws
    func leases() async throws -> [Lease]

    /// Records an instance's heartbeat (the first one inserts it).
    func saveInstance(_ instance: InstanceRecord) async throws
    /// Every instance with a heartbeat, by id.
    func instances() async throws -> [InstanceRecord]
    /// An instance that stopped cleanly takes itself out.
    func removeInstance(id: String) async throws
}

/// API keys (their hashes) and the audit log.
public protocol AccessStore: Sendable {
    func saveAPIKey(_ key: APIKeyRecord) async throws
    func apiKeys(tenant: String?) async throws -> [APIKeyRecord]
    func apiKey(hash: String) async throws -> APIKeyRecord?
    /// Returns false if there is no such key.
    func revokeAPIKey(id: String, at: Date) async throws -> Bool

    func appendAudit(tenant: String, actor: String, action: String, detail: JSONValue, at: Date) async throws
    /// Newest first.
    func auditLog(tenant: String?, limit: Int) async throws -> [AuditEntry]
}
