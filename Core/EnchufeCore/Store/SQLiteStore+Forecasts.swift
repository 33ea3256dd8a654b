import Foundation
import GRDB

/// Forecasts on SQLite: one table, every issue kept; the latest issue per interval chosen with a
/// window function.
extension SQLiteStore {
    public func saveForecasts(_ forecasts: [Forecast]) async throws {
        try forecasts.checkStorable()
        guard !forecasts.isEmpty else { return }
        try await writer.write { db in
            let statement = try db.cachedStatement(sql: """
                INSERT INTO forecasts (tenant, series, quantity, ts, resolution, value, unit, model, issued_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (tenant, series, quantity, ts, model, issued_at) DO UPDATE SET
                    resolution = excluded.resolution, value = excluded.value, unit = excluded.unit
                """)
            for f in forecasts {
                let r = f.reading
                try statement.execute(arguments: [
                    r.tenant, r.series, r.quantity, Self.millis(r.ts), r.resolution, r.value, r.unit, f.model, Self.millis(f.issuedAt),
                ])
            }
        }
    }

    public func forecasts(_ q: ForecastQuery) async throws -> [Forecast] {
        var conditions = ["tenant = ?", "ts >= ?", "ts < ?"]
        var arguments: [(any DatabaseValueConvertible)?] = [q.tenant, Self.millis(q.from), Self.millis(q.to)]
        if let quantity = q.quantity {
            conditions.append("quantity = ?")
            arguments.append(quantity)
        }
        if !q.series.isEmpty {
            conditions.append("series IN (\(q.series.map { _ in "?" }.joined(separator: ", ")))")
            arguments += q.series.map { $0 }
        }
        let columns = "tenant, series, quantity, ts, resolution, value, unit, model, issued_at"
        let order = "ORDER BY series, quantity, ts, model, issued_at"
        let sql: String
        if let vintage = q.vintage {
            conditions.append("issued_at <= ?")
            arguments.append(Self.millis(vintage))
            sql = """
                SELECT \(columns) FROM (
                    SELECT \(columns), ROW_NUMBER() OVER (PARTITION BY series, quantity, ts, model ORDER BY issued_at DESC) AS issue
                    FROM forecasts WHERE \(conditions.joined(separator: " AND "))
                ) WHERE issue = 1 \(order)
                """
        } else {
            sql = "SELECT \(columns) FROM forecasts WHERE \(conditions.joined(separator: " AND ")) \(order)"
        }
        let bound: [DatabaseValue] = arguments.map { $0?.databaseValue ?? .null }
        return try await writer.read { db in
            try Row.fetchAll(db, sql: sql, arguments: StatementArguments(bound)).map { row in
                Forecast(
                    Reading(
                        tenant: row["tenant"], series: row["series"], quantity: row["quantity"], ts: Self.date(row["ts"]),
                        resolution: row["resolution"], value: row["value"], unit: row["unit"], quality: .forecast, source: row["model"]),
                    issuedAt: Self.date(row["issued_at"]), model: row["model"])
            }
        }
    }

    public func purgeForecasts(issuedBefore before: Date) async throws -> Int {
        try await writer.write { db in
            try db.execute(sql: "DELETE FROM forecasts WHERE issued_at < ?", arguments: [Self.millis(before)])
            return db.changesCount
        }
    }
}
