import Foundation

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
