import Foundation

/// A predicted value, kept apart from the readings (a forecast never replaces nor passes for a
/// measurement): the reading it predicts — series, quantity, interval, value, unit — and when it
/// was issued and by which model. Every issue is kept (its vintage), so that accuracy can be
/// measured per horizon.
public struct Forecast: Sendable, Hashable {
    public var reading: Reading
    public var issuedAt: Date
    public var model: String

    public init(_ reading: Reading, issuedAt: Date, model: String) {
        self.reading = reading
        self.issuedAt = issuedAt
        self.model = model
    }

    /// How far ahead it was issued: from its issue to the start of its interval.
    public var horizon: TimeInterval { reading.ts.timeIntervalSince(issuedAt) }

    /// Why it cannot be stored, or nil.
    public var problem: String? {
        reading.problem
            ?? ReadingLimits.problem(instant: issuedAt).map { "issued_at \($0)" }
            ?? ReadingLimits.problem(name: model, bytes: ReadingLimits.nameBytes).map { "model \($0)" }
    }

    public var json: JSONValue {
        let r = reading
        return [
            "series": .string(r.series), "quantity": .string(r.quantity), "ts": .string(ISO8601.string(r.ts)),
            "resolution": .string(r.resolution), "value": .number(r.value), "unit": .string(r.unit),
            "issued_at": .string(ISO8601.string(issuedAt)), "model": .string(model),
        ]
    }
}

/// Which forecasts: a tenant's, of some series (all when empty) and a quantity, over a half-open
/// interval of their times; of every issue (`vintage` nil), or per series, quantity, interval and
/// model the latest issued at or before `vintage` (`.distantFuture`: the latest of all).
public struct ForecastQuery: Sendable {
    public var tenant: String
    public var series: [String]
    public var quantity: String?
    public var from: Date
    public var to: Date
    public var vintage: Date?

    public init(tenant: String, series: [String] = [], quantity: String? = nil, from: Date, to: Date, vintage: Date? = .distantFuture) {
        self.tenant = tenant
        self.series = series
        self.quantity = quantity
        self.from = from
        self.to = to
        self.vintage = vintage
    }
}

extension [Forecast] {
    /// Throws a `PermanentError` naming the first forecast that cannot be stored. On an array, as
    /// `[Reading].checkStorable`: a generic extension runs unspecialized when a store calls it.
    public func checkStorable() throws {
        for (i, f) in enumerated() {
            if let why = f.problem {
                throw PermanentError("forecast \(i + 1) (\(f.reading.series.prefix(64)) \(f.reading.quantity.prefix(32))) cannot be stored: \(why)")
            }
        }
    }
}
