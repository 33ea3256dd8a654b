import Foundation

/// Sums of readings computed by the store (for the dashboard: a month of a hundred members is a
/// few thousand sums, not a million rows sent to the hub): a tenant's readings of some series and
/// quantities over a half-open interval, summed per quantity, per series when `perSeries`, and per
/// `bucket` seconds counted from the epoch when set (3600: UTC hours, which are local hours in
/// every Spanish time zone, DST days included) or over the whole interval when nil.
public struct ReadingTotalsQuery: Sendable {
    public var tenant: String
    public var series: [String]
    public var quantities: [String]
    public var from: Date
    public var to: Date
    public var bucket: Int?
    public var perSeries: Bool

    public init(tenant: String, series: [String], quantities: [String], from: Date, to: Date, bucket: Int? = nil, perSeries: Bool = false) {
        self.tenant = tenant
        self.series = series
        self.quantities = quantities
        self.from = from
        self.to = to
        self.bucket = bucket
        self.perSeries = perSeries
    }
}

/// One sum of `ReadingTotalsQuery`: `series` set when summed per series, `start` (the bucket's
/// first instant) when summed per bucket; `count` readings went into it.
public struct ReadingTotal: Sendable, Hashable {
    public var series: String?
    public var quantity: String
    public var start: Date?
    public var sum: Double
    public var count: Int

    public init(series: String?, quantity: String, start: Date?, sum: Double, count: Int) {
        self.series = series
        self.quantity = quantity
        self.start = start
        self.sum = sum
        self.count = count
    }
}
