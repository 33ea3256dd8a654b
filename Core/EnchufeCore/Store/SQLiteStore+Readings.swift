import Foundation
import GRDB
import GRDBSQLite

/// SQLite copies a bound text before the call returns.
private let sqliteTransient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

// The SQLite store's readings: upserts with prepared statements, queries, the changes feed.
extension SQLiteStore {
    /// A new reading is a plain insert; only a reading whose key is stored already takes the
    /// update, which changes the row when the value, unit, resolution or quality differ and the
    /// quality is not lower. Both number their parameters alike (`bind`).
    private static let insertSQL = """
        INSERT INTO readings (tenant, series, quantity, ts, resolution, value, unit, quality, source, revision, seq, updated_at)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1, ?10, ?11)
        ON CONFLICT (tenant, series, quantity, ts) DO NOTHING
        """

    private static let updateSQL = """
        UPDATE readings SET
            resolution = ?5, value = ?6, unit = ?7, quality = ?8, source = ?9, revision = revision + 1,
            seq = ?10, updated_at = ?11
        WHERE tenant = ?1 AND series = ?2 AND quantity = ?3 AND ts = ?4
          AND \(qualityRank("?8")) >= \(qualityRank("quality"))
          AND (?6 IS NOT value OR ?8 IS NOT quality OR ?7 IS NOT unit OR ?5 IS NOT resolution)
        """

    /// Runs the insert or the update for one reading, bound with SQLite's own calls (GRDB's
    /// `StatementArguments` box every value, which cost as much as the insert itself in a batch
    /// of thousands); whether it changed a row.
    private static func run(_ statement: Statement, _ r: Reading, seq: Int64, now: Int64, _ db: Database) throws -> Bool {
        let s = statement.sqliteStatement
        sqlite3_reset(s)
        func text(_ index: Int32, _ value: String) { sqlite3_bind_text(s, index, value, -1, sqliteTransient) }
        text(1, r.tenant)
        text(2, r.series)
        text(3, r.quantity)
        text(5, r.resolution)
        text(7, r.unit)
        text(8, r.quality.rawValue)
        text(9, r.source)
        sqlite3_bind_int64(s, 4, millis(r.ts))
        sqlite3_bind_double(s, 6, r.value)
        sqlite3_bind_int64(s, 10, seq)
        sqlite3_bind_int64(s, 11, now)
        let code = sqlite3_step(s)
        guard code == SQLITE_DONE else {
            let message = String(cString: sqlite3_errmsg(db.sqliteConnection))
            sqlite3_reset(s)
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: message, sql: statement.sql)
        }
        return sqlite3_changes(db.sqliteConnection) > 0
    }

    private static func qualityRank(_ column: String) -> String {
        let cases = Quality.allCases.map { "WHEN '\($0.rawValue)' THEN \($0.rank)" }.joined(separator: " ")
        return "(CASE \(column) \(cases) ELSE 0 END)"
    }

    public func upsert(_ readings: [Reading]) async throws -> UpsertSummary {
        guard !readings.isEmpty else { return UpsertSummary() }
        try readings.checkStorable()
        let now = Self.millis(Date())
        let lease = Lease.current
        return try await writer.write { db in
            if let lease { try Self.checkHeld(lease, now: now, db) }
            var seq = try Int64.fetchOne(db, sql: "SELECT value FROM sequences WHERE name = 'readings'") ?? 0
            let insert = try db.cachedStatement(sql: Self.insertSQL)
            let update = try db.cachedStatement(sql: Self.updateSQL)
            var summary = UpsertSummary()
            for r in readings {
                seq += 1
                if try Self.run(insert, r, seq: seq, now: now, db) {
                    summary.inserted += 1
                } else if try Self.run(update, r, seq: seq, now: now, db) {
                    summary.updated += 1
                } else {
                    summary.unchanged += 1
                }
            }
            try db.execute(sql: "UPDATE sequences SET value = ? WHERE name = 'readings'", arguments: [seq])
            return summary
        }
    }

    private static let readingColumns = "tenant, series, quantity, ts, resolution, value, unit, quality, source, revision, seq"

    private static func storedReading(_ row: Row) -> StoredReading {
        StoredReading(
            reading: Reading(
                tenant: row["tenant"], series: row["series"], quantity: row["quantity"],
                ts: date(row["ts"]), resolution: row["resolution"], value: row["value"], unit: row["unit"],
                quality: Quality(rawValue: row["quality"]) ?? .measured, source: row["source"]),
            revision: row["revision"], seq: row["seq"])
    }

    public func readings(_ query: ReadingQuery) async throws -> [StoredReading] {
        var sql = "SELECT \(Self.readingColumns) FROM readings WHERE tenant = ?"
        var arguments: StatementArguments = [query.tenant]
        if !query.series.isEmpty {
            sql += " AND series IN (\(query.series.map { _ in "?" }.joined(separator: ",")))"
            for s in query.series { _ = arguments.append(contentsOf: [s]) }
        }
        if let quantity = query.quantity {
            sql += " AND quantity = ?"
            _ = arguments.append(contentsOf: [quantity])
        }
        if let from = query.from {
            sql += " AND ts >= ?"
            _ = arguments.append(contentsOf: [Self.millis(from)])
        }
        if let to = query.to {
            sql += " AND ts < ?"
            _ = arguments.append(contentsOf: [Self.millis(to)])
        }
        if let after = query.after {
            sql += " AND (series, quantity, ts) > (?, ?, ?)"
            _ = arguments.append(contentsOf: [after.series, after.quantity, Self.millis(after.ts)])
        }
        sql += " ORDER BY series, quantity, ts"
        if let limit = query.limit { sql += " LIMIT \(limit)" }
        let finalSQL = sql
        let finalArguments = arguments
        return try await writer.read { db in
            try Row.fetchAll(db, sql: finalSQL, arguments: finalArguments).map(Self.storedReading)
        }
    }

    public func changes(tenant: String, after seq: Int64, limit: Int) async throws -> [StoredReading] {
        try await writer.read { db in
            try Row.fetchAll(
                db, sql: "SELECT \(Self.readingColumns) FROM readings WHERE tenant = ? AND seq > ? ORDER BY seq LIMIT ?",
                arguments: [tenant, seq, limit]
            ).map(Self.storedReading)
        }
    }
}

extension SQLiteStore {
    /// Sums per quantity (and series): one `GROUP BY`; per bucket of time: `bucketTotals`.
    public func totals(_ q: ReadingTotalsQuery) async throws -> [ReadingTotal] {
        guard !q.series.isEmpty, !q.quantities.isEmpty else { return [] }
        if let bucket = q.bucket { return try await bucketTotals(q, bucket: Int64(max(1, bucket)) * 1000) }
        var groups = ["quantity"]
        if q.perSeries { groups.insert("series", at: 0) }
        let sql = """
            SELECT \(groups.joined(separator: ", ")), SUM(value), COUNT(*) FROM readings
            WHERE tenant = ? AND series IN (\(q.series.map { _ in "?" }.joined(separator: ","))) AND quantity IN (\(q.quantities.map { _ in "?" }.joined(separator: ",")))
              AND ts >= ? AND ts < ?
            GROUP BY \(groups.joined(separator: ", ")) ORDER BY \(groups.joined(separator: ", "))
            """
        var arguments: StatementArguments = [q.tenant]
        for s in q.series { _ = arguments.append(contentsOf: [s]) }
        for quantity in q.quantities { _ = arguments.append(contentsOf: [quantity]) }
        _ = arguments.append(contentsOf: [Self.millis(q.from), Self.millis(q.to)])
        let finalArguments = arguments
        return try await writer.read { db in
            try Row.fetchAll(db, sql: sql, arguments: finalArguments).map { row in
                var column = 0
                func next() -> DatabaseValue { defer { column += 1 }; return row[column] as DatabaseValue }
                let series: String? = q.perSeries ? String.fromDatabaseValue(next()) : nil
                let quantity = String.fromDatabaseValue(next()) ?? ""
                let sum = Double.fromDatabaseValue(next()) ?? 0
                let count = Int.fromDatabaseValue(next()) ?? 0
                return ReadingTotal(series: series, quantity: quantity, start: nil, sum: sum, count: count)
            }
        }
    }

    /// Sums per bucket of time. SQLite would put every row through a temporary B-tree to group on
    /// a computed bucket (0.6 s for a million rows on this machine); the primary key already gives
    /// each series and quantity's rows in time order, so runs of one bucket are summed as they come,
    /// one prepared statement per series and quantity, reading only `ts` and `value`.
    private func bucketTotals(_ q: ReadingTotalsQuery, bucket: Int64) async throws -> [ReadingTotal] {
        struct Group: Hashable {
            var series: String?
            var quantity: String
            var start: Int64
        }
        let (from, to) = (Self.millis(q.from), Self.millis(q.to))
        return try await writer.read { db in
            let statement = try db.cachedStatement(sql: "SELECT ts, value FROM readings WHERE tenant = ? AND series = ? AND quantity = ? AND ts >= ? AND ts < ?")
            var sums: [Group: (sum: Double, count: Int)] = [:]
            for series in Set(q.series) {
                for quantity in Set(q.quantities) {
                    statement.arguments = [q.tenant, series, quantity, from, to]
                    let rows = try Row.fetchCursor(statement)
                    var start = Int64.min, sum = 0.0, count = 0
                    func flush() {
                        guard count > 0 else { return }
                        let group = Group(series: q.perSeries ? series : nil, quantity: quantity, start: start)
                        let before = sums[group] ?? (0, 0)
                        sums[group] = (before.sum + sum, before.count + count)
                    }
                    while let row = try rows.next() {
                        let ts: Int64 = row[0]
                        let at = (ts / bucket) * bucket
                        if at != start {
                            flush()
                            (start, sum, count) = (at, 0, 0)
                        }
                        sum += row[1] as Double
                        count += 1
                    }
                    flush()
                }
            }
            return sums.sorted { a, b in
                (a.key.series ?? "", a.key.quantity, a.key.start) < (b.key.series ?? "", b.key.quantity, b.key.start)
            }.map { ReadingTotal(series: $0.key.series, quantity: $0.key.quantity, start: Self.date($0.key.start), sum: $0.value.sum, count: $0.value.count) }
        }
    }
}
