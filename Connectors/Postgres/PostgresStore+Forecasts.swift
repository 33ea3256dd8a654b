import EnchufeCore
import Foundation
import PostgresNIO

/// Forecasts, as SQLite's: every issue kept, a batch written as one `INSERT ... SELECT FROM
/// unnest(...)`, the latest issue per interval chosen with a window function.
extension PostgresStore {
    public func saveForecasts(_ forecasts: [Forecast]) async throws {
        try forecasts.checkStorable()
        // One row per key (the last wins), as an upsert cannot touch a row twice in one statement.
        var byKey: [String: Forecast] = [:]
        var order: [String] = []
        for f in forecasts {
            let r = f.reading
            let key = "\(r.tenant)\u{0}\(r.series)\u{0}\(r.quantity)\u{0}\(r.ts.timeIntervalSince1970)\u{0}\(f.model)\u{0}\(f.issuedAt.timeIntervalSince1970)"
            if byKey.updateValue(f, forKey: key) == nil { order.append(key) }
        }
        let rows = order.map { byKey[$0]! }
        guard !rows.isEmpty else { return }
        let tenants = rows.map(\.reading.tenant), series = rows.map(\.reading.series), quantities = rows.map(\.reading.quantity)
        let times = rows.map(\.reading.ts), resolutions = rows.map(\.reading.resolution), values = rows.map(\.reading.value)
        let units = rows.map(\.reading.unit), models = rows.map(\.model), issued = rows.map(\.issuedAt)
        try await withConnection { connection in
            try await connection.query(
                """
                INSERT INTO forecasts (tenant, series, quantity, ts, resolution, value, unit, model, issued_at)
                SELECT * FROM unnest(\(tenants)::text[], \(series)::text[], \(quantities)::text[], \(times)::timestamptz[],
                                     \(resolutions)::text[], \(values)::float8[], \(units)::text[], \(models)::text[], \(issued)::timestamptz[])
                ON CONFLICT (tenant, series, quantity, ts, model, issued_at) DO UPDATE SET
                    resolution = excluded.resolution, value = excluded.value, unit = excluded.unit
                """, logger: self.logger)
        }
    }

    public func forecasts(_ q: ForecastQuery) async throws -> [Forecast] {
        let columns = "tenant, series, quantity, ts, resolution, value, unit, model, issued_at"
        let series = q.series
        return try await withConnection { connection in
            let rows: PostgresRowSequence
            if let vintage = q.vintage {
                rows = try await connection.query(
                    """
                    SELECT \(unescaped: columns) FROM (
                        SELECT \(unescaped: columns),
                               ROW_NUMBER() OVER (PARTITION BY series, quantity, ts, model ORDER BY issued_at DESC) AS issue
                        FROM forecasts
                        WHERE tenant = \(q.tenant) AND ts >= \(q.from) AND ts < \(q.to) AND issued_at <= \(vintage)
                          AND (\(q.quantity)::text IS NULL OR quantity = \(q.quantity))
                          AND (cardinality(\(series)::text[]) = 0 OR series = ANY(\(series)::text[]))
                    ) AS latest WHERE issue = 1
                    ORDER BY series, quantity, ts, model, issued_at
                    """, logger: self.logger)
            } else {
                rows = try await connection.query(
                    """
                    SELECT \(unescaped: columns) FROM forecasts
                    WHERE tenant = \(q.tenant) AND ts >= \(q.from) AND ts < \(q.to)
                      AND (\(q.quantity)::text IS NULL OR quantity = \(q.quantity))
                      AND (cardinality(\(series)::text[]) = 0 OR series = ANY(\(series)::text[]))
                    ORDER BY series, quantity, ts, model, issued_at
                    """, logger: self.logger)
            }
            var result: [Forecast] = []
            for try await (tenant, series, quantity, ts, resolution, value, unit, model, issued) in rows.decode(
                (String, String, String, Date, String, Double, String, String, Date).self)
            {
                result.append(Forecast(
                    Reading(
                        tenant: tenant, series: series, quantity: quantity, ts: Self.roundedToMillis(ts), resolution: resolution,
                        value: value, unit: unit, quality: .forecast, source: model),
                    issuedAt: Self.roundedToMillis(issued), model: model))
            }
            return result
        }
    }

    public func purgeForecasts(issuedBefore before: Date) async throws -> Int {
        try await withConnection { connection in
            let rows = try await connection.query(
                "WITH d AS (DELETE FROM forecasts WHERE issued_at < \(before) RETURNING 1) SELECT count(*) FROM d", logger: self.logger)
            for try await count in rows.decode(Int64.self) { return Int(count) }
            return 0
        }
    }
}
