import Foundation
import NIOCore

/// Where a node keeps its progress: one value per (tenant, flow, node, key).
public struct CheckpointKey: Sendable, Hashable {
    public var tenant: String
    public var flow: String
    public var node: String
    public var key: String

    public init(tenant: String, flow: String, node: String, key: String) {
        self.tenant = tenant
        self.flow = flow
        self.node = node
        self.key = key
    }
}

public struct Checkpoint: Sendable, Hashable {
    public var key: CheckpointKey
    public var value: String
    public var updatedAt: Date

    public init(key: CheckpointKey, value: String, updatedAt: Date) {
        self.key = key
        self.value = value
        self.updatedAt = updatedAt
    }
}

/// What an upsert did: new rows, changed rows (revision bumped) and rows left as they were (same
/// value, or a lower-quality value that may not replace the stored one).
public struct UpsertSummary: Sendable, Equatable {
    public var inserted = 0
    public var updated = 0
    public var unchanged = 0

    public init(inserted: Int = 0, updated: Int = 0, unchanged: Int = 0) {
        self.inserted = inserted
        self.updated = updated
        self.unchanged = unchanged
    }

    public static func + (a: UpsertSummary, b: UpsertSummary) -> UpsertSummary {
        UpsertSummary(inserted: a.inserted + b.inserted, updated: a.updated + b.updated, unchanged: a.unchanged + b.unchanged)
    }
}

public struct ReadingQuery: Sendable {
    public var tenant: String
    public var series: [String]
    public var quantity: String?
    /// Inclusive.
    public var from: Date?
    /// Exclusive.
    public var to: Date?
    public var limit: Int?
    /// Keyset paging: only readings after this one in (series, quantity, ts) order.
    public var after: ReadingKey?

    public init(tenant: String, series: [String] = [], quantity: String? = nil, from: Date? = nil, to: Date? = nil, limit: Int? = nil, after: ReadingKey? = nil) {
        self.after = after
        self.tenant = tenant
        self.series = series
        self.quantity = quantity
        self.from = from
        self.to = to
        self.limit = limit
    }
}

/// Where a reading sits in the (series, quantity, ts) order of `readings`.
public struct ReadingKey: Sendable, Hashable {
    public var series: String
    public var quantity: String
    public var ts: Date

    public init(series: String, quantity: String, ts: Date) {
        self.series = series
        self.quantity = quantity
        self.ts = ts
    }

    public init(_ r: Reading) { self.init(series: r.series, quantity: r.quantity, ts: r.ts) }
}

extension Store {
    public func writeCSV(_ query: ReadingQuery, to write: (ByteBuffer) async throws -> Void) async throws {
        var writer = ExportWriter(.csv)
        for try await page in readingPages(query) { try await write(ByteBuffer(string: writer.rows(page))) }
    }

    /// The readings of `query` in pages of `pageSize` (keyset paging, so each page is one short
    /// query however large the export). The next page is fetched while the caller handles the
    /// current one, and no further: memory holds at most two pages, however slow the reader.
    public func readingPages(_ query: ReadingQuery, pageSize: Int = 5000) -> KeysetPages<[StoredReading]> {
        KeysetPages(query: query, pageSize: pageSize) { q in
            let page = try await self.readings(q)
            return (page, page.count, page.last.map { ReadingKey($0.reading) })
        }
    }

}

/// The pages of a reading query, fetched by keyset, one page ahead of the reader (see
/// `Store.readingPages`).
public struct KeysetPages<Page: Sendable>: AsyncSequence, Sendable {
    public typealias Element = Page
    public typealias Fetch = @Sendable (ReadingQuery) async throws -> (page: Page, count: Int, last: ReadingKey?)
    let query: ReadingQuery
    let pageSize: Int
    let fetch: Fetch

    public init(query: ReadingQuery, pageSize: Int, fetch: @escaping Fetch) {
        self.query = query
        self.pageSize = pageSize
        self.fetch = fetch
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var query: ReadingQuery
        let pageSize: Int
        let fetch: Fetch
        var pending: Task<(page: Page, count: Int, last: ReadingKey?), any Error>?
        var done = false

        public mutating func next() async throws -> Page? {
            guard !done else { return nil }
            let current = pending ?? Task { [query, fetch] in try await fetch(query) }
            let result = try await withTaskCancellationHandler {
                try await current.value
            } onCancel: {
                current.cancel()
            }
            pending = nil
            guard result.count == pageSize, let last = result.last else {
                done = true
                return result.count == 0 ? nil : result.page
            }
            query.after = last
            pending = Task { [query, fetch] in try await fetch(query) }
            return result.page
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        var q = query
        q.limit = pageSize
        return AsyncIterator(query: q, pageSize: pageSize, fetch: fetch)
    }
}

/// A supply point (CUPS) of a tenant, for one validity period.
public struct SupplyPoint: Sendable, Hashable {
    public var tenant: String
    public var cups: String
    public var tariff: String?
    public var zone: String?
    public var distributorCode: String?
    public var pointType: Int?
    public var contractedPowerKW: [Double]
    public var coefficient: Double?
    public var community: String?
    /// Local dates (`YYYY-MM-DD`); nil: open.
    public var validFrom: String?
    public var validTo: String?
    /// The record as the source sent it.
    public var raw: JSONValue?

    public init(
        tenant: String, cups: String, tariff: String? = nil, zone: String? = nil, distributorCode: String? = nil,
        pointType: Int? = nil, contractedPowerKW: [Double] = [], coefficient: Double? = nil, community: String? = nil,
        validFrom: String? = nil, validTo: String? = nil, raw: JSONValue? = nil
    ) {
        self.tenant = tenant
        self.cups = cups
        self.tariff = tariff
        self.zone = zone
        self.distributorCode = distributorCode
        self.pointType = pointType
        self.contractedPowerKW = contractedPowerKW
        self.coefficient = coefficient
        self.community = community
        self.validFrom = validFrom
        self.validTo = validTo
        self.raw = raw
    }
}

/// One running `enchufe run` of a deployment, as its heartbeats in the store say.
public struct InstanceRecord: Sendable, Equatable {
    public var id: String
    public var host: String
    public var pid: Int
    /// The address it serves HTTP on.
    public var http: String
    public var startedAt: Date
    public var heartbeatAt: Date

    public init(id: String, host: String, pid: Int, http: String, startedAt: Date, heartbeatAt: Date) {
        self.id = id
        self.host = host
        self.pid = pid
        self.http = http
        self.startedAt = startedAt
        self.heartbeatAt = heartbeatAt
    }
}

/// The right of one instance to run one singleton source (a schedule, a pull connector) for a
/// while. `fence` grows each time the lease changes hands: a write fenced with an older number is
/// refused, so an instance that lost its lease (paused, cut off) commits nothing afterwards.
public struct Lease: Sendable, Hashable {
    public var name: String
    public var holder: String
    public var fence: Int64
    public var expiresAt: Date

    public init(name: String, holder: String, fence: Int64, expiresAt: Date) {
        self.name = name
        self.holder = holder
        self.fence = fence
        self.expiresAt = expiresAt
    }

    /// The lease the current task's checkpoint writes are fenced with (set by the engine around a
    /// singleton source).
    @TaskLocal public static var current: Lease?
}

/// A fenced write refused: the lease it was made under is no longer held.
public struct LeaseLost: Error, CustomStringConvertible {
    public var lease: String
    public var description: String { "the lease '\(lease)' is held by another instance now: nothing was written" }
    public init(lease: String) { self.lease = lease }
}

/// A message that failed with no `errors` wire, kept with the reason and the original message.
public struct DeadLetter: Sendable, Hashable {
    public var id: Int64
    public var tenant: String
    public var flow: String
    public var node: String
    public var error: String
    public var message: JSONValue
    public var attempts: Int
    public var createdAt: Date
    public var replayedAt: Date?

    public init(
        id: Int64, tenant: String, flow: String, node: String, error: String, message: JSONValue, attempts: Int,
        createdAt: Date, replayedAt: Date? = nil
    ) {
        self.id = id
        self.tenant = tenant
        self.flow = flow
        self.node = node
        self.error = error
        self.message = message
        self.attempts = attempts
        self.createdAt = createdAt
        self.replayedAt = replayedAt
    }
}

public struct NewDeadLetter: Sendable {
    public var tenant: String
    public var flow: String
    public var node: String
    public var error: String
    public var message: JSONValue
    public var attempts: Int

    public init(tenant: String, flow: String, node: String, error: String, message: JSONValue, attempts: Int) {
        self.tenant = tenant
        self.flow = flow
        self.node = node
        self.error = error
        self.message = message
        self.attempts = attempts
    }
}

/// An API key as stored: only the hash of the key itself.
public struct APIKeyRecord: Sendable, Hashable {
    public var id: String
    public var tenant: String
    public var name: String
    public var scopes: [String]
    public var hash: String
    public var createdAt: Date
    public var revokedAt: Date?
    public var lastUsedAt: Date?

    public init(id: String, tenant: String, name: String, scopes: [String], hash: String, createdAt: Date, revokedAt: Date? = nil, lastUsedAt: Date? = nil) {
        self.id = id
        self.tenant = tenant
        self.name = name
        self.scopes = scopes
        self.hash = hash
        self.createdAt = createdAt
        self.revokedAt = revokedAt
        self.lastUsedAt = lastUsedAt
    }
}

public struct AuditEntry: Sendable, Hashable {
    public var id: Int64
    public var at: Date
    public var tenant: String
    /// An API key id, `cli`, or a flow/node.
    public var actor: String
    public var action: String
    public var detail: JSONValue

    public init(id: Int64, at: Date, tenant: String, actor: String, action: String, detail: JSONValue) {
        self.id = id
        self.at = at
        self.tenant = tenant
        self.actor = actor
        self.action = action
        self.detail = detail
    }
}

/// The hub's storage: readings with their upsert rules and change sequence, supplies, checkpoints,
/// dead letters, API keys and the audit log. SQLite implements it in Core; PostgreSQL in its module.
/// Every backend passes the same conformance suite (Tests/StoreConformance).
public protocol Store: Sendable {
    /// The store's URL with any password hidden.
    var displayName: String { get }

    /// Creates or upgrades the schema; returns the migrations it applied.
    @discardableResult func migrate() async throws -> [String]
    /// Throws if the store cannot be reached.
    func ping() async throws
    func close() async throws
    /// Facts about the store worth a line at startup (engine features in use).
    func startupNotes() async -> [String]
    /// Whether several hub instances can share the store (PostgreSQL: singleton sources then run
    /// under leases) or it serves one instance (a SQLite file).
    var isShared: Bool { get }
    /// Makes this process the one instance on a store that serves one (refused, saying which
    /// instance has it, while another runs); nothing to do on a shared store.
    func claimForOneInstance(_ instance: String) throws

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

    func saveSupply(_ supply: SupplyPoint) async throws
    func supplies(tenant: String) async throws -> [SupplyPoint]

    func checkpoint(_ key: CheckpointKey) async throws -> Checkpoint?
    /// Saves a checkpoint; inside a singleton source's task (`Lease.current` set), only while that
    /// lease is still held with its fence, else `LeaseLost`.
    func saveCheckpoint(_ key: CheckpointKey, value: String) async throws

    /// Marks of requests taken (an HMAC signature used, an idempotency key's first answer), each
    /// kept until it expires. Makes the mark unless one that has not expired holds the key; true
    /// when this call made it. Atomic: of concurrent claims of one key, exactly one wins.
    func claimMark(_ key: CheckpointKey, value: String, expiresAt: Date) async throws -> Bool
    /// The value of the mark of `key`, unless it expired.
    func mark(_ key: CheckpointKey, now: Date) async throws -> String?
    /// Gives a mark another value (and expiry).
    func updateMark(_ key: CheckpointKey, value: String, expiresAt: Date) async throws
    /// Removes a mark: the request it stood for was not taken after all.
    func releaseMark(_ key: CheckpointKey) async throws
    /// Removes the marks that expired before `now`; returns how many.
    func purgeExpiredMarks(now: Date) async throws -> Int

    func addDeadLetter(_ letter: NewDeadLetter) async throws -> Int64
    /// Newest first; all tenants when `tenant` is nil.
    func deadLetters(tenant: String?, limit: Int) async throws -> [DeadLetter]
    func deadLetter(id: Int64) async throws -> DeadLetter?
    func markDeadLetterReplayed(id: Int64, at: Date) async throws
    /// Deletes dead letters (all tenants when nil); returns how many.
    func purgeDeadLetters(tenant: String?) async throws -> Int

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

    func saveAPIKey(_ key: APIKeyRecord) async throws
    func apiKeys(tenant: String?) async throws -> [APIKeyRecord]
    func apiKey(hash: String) async throws -> APIKeyRecord?
    /// Returns false if there is no such key.
    func revokeAPIKey(id: String, at: Date) async throws -> Bool

    func appendAudit(tenant: String, actor: String, action: String, detail: JSONValue, at: Date) async throws
    /// Newest first.
    func auditLog(tenant: String?, limit: Int) async throws -> [AuditEntry]
}

extension Store {
    public func startupNotes() async -> [String] { [] }
    public var isShared: Bool { true }
    public func claimForOneInstance(_ instance: String) throws {}
}
