import EnchufeCore
import Foundation
import NIOCore
import PostgresNIO

extension PostgresStore {
    static let stagingColumns = ["ord", "round", "tenant", "series", "quantity", "ts_ms", "resolution", "value", "unit", "quality", "source"]

    static let createStaging: PostgresQuery = """
        CREATE TEMP TABLE IF NOT EXISTS readings_staging (
            ord integer NOT NULL, round integer NOT NULL, tenant text NOT NULL, series text NOT NULL,
            quantity text NOT NULL, ts_ms bigint NOT NULL, resolution text NOT NULL, value double precision NOT NULL,
            unit text NOT NULL, quality text NOT NULL, source text NOT NULL
        ) ON COMMIT DELETE ROWS
        """

    static func qualityRank(_ column: String) -> String {
        let cases = Quality.allCases.map { "WHEN '\($0.rawValue)' THEN \($0.rank)" }.joined(separator: " ")
        return "(CASE \(column) \(cases) ELSE 0 END)"
    }

    /// Reserves `count` change numbers and returns the last one used before them. The counter row stays
    /// locked until the transaction ends, so batches take their numbers in commit order: a reader of the
    /// changes feed never sees seq N+1 committed before seq N.
    static func reserveSequence(_ count: Int) -> PostgresQuery {
        "UPDATE sequences SET value = value + \(Int64(count)) WHERE name = 'readings' RETURNING value - \(Int64(count))"
    }

    /// The staging rows of one round (or all rows), with `ts` as a timestamp and `seq` from `base`.
    static func stagedRows(round: Int?, base: Int64) -> String {
        """
        SELECT tenant, series, quantity, timestamptz 'epoch' + ts_ms * interval '1 millisecond' AS ts, resolution, value,
               unit, quality, source, \(base) + ord + 1 AS seq
        FROM readings_staging\(round.map { " WHERE round = \($0)" } ?? "")
        """
    }

    static let insertColumns = "tenant, series, quantity, ts, resolution, value, unit, quality, source, revision, seq, updated_at"

    /// Inserts staged rows as new readings; with `onlyAbsent`, only those whose key is not stored yet.
    static func insertStaged(round: Int?, base: Int64, onlyAbsent: Bool) -> PostgresQuery {
        var sql = """
            INSERT INTO readings (\(insertColumns))
            SELECT tenant, series, quantity, ts, resolution, value, unit, quality, source, 1, seq, now()
            FROM (\(stagedRows(round: round, base: base))) s
            """
        if onlyAbsent {
            sql += """

                WHERE NOT EXISTS (
                    SELECT 1 FROM readings r
                    WHERE r.tenant = s.tenant AND r.series = s.series AND r.quantity = s.quantity AND r.ts = s.ts)
                """
        }
        return PostgresQuery(unsafeSQL: sql)
    }

    /// Updates stored readings from the staged rows of one round, by the upsert rules: only where the
    /// value (or quality, unit, resolution) differs and the new quality may replace the stored one.
    /// Rows just inserted from the same round are equal to their staged row, so they stay as they are.
    static func updateStaged(round: Int, base: Int64) -> PostgresQuery {
        PostgresQuery(unsafeSQL: """
            UPDATE readings AS r SET
                resolution = s.resolution, value = s.value, unit = s.unit, quality = s.quality, source = s.source,
                revision = r.revision + 1, seq = s.seq, updated_at = now()
            FROM (\(stagedRows(round: round, base: base))) s
            WHERE r.tenant = s.tenant AND r.series = s.series AND r.quantity = s.quantity AND r.ts = s.ts
              AND \(qualityRank("s.quality")) >= \(qualityRank("r.quality"))
              AND (s.value IS DISTINCT FROM r.value OR s.quality <> r.quality OR s.unit <> r.unit OR s.resolution <> r.resolution)
            """)
    }

    /// Upserts a batch in one transaction. The rows go to a temporary staging table with `COPY ... FROM
    /// STDIN` (text format), and are merged set-based:
    /// - fast path, for a batch of new readings (ingestion of fresh data): one `INSERT ... SELECT` of
    ///   every staged row under a savepoint; if a key already exists the unique index refuses it, the
    ///   savepoint is rolled back and the batch takes the merge path (as do the following batches, until
    ///   one is all new again);
    /// - merge path: per round, an `INSERT` of the keys not stored yet, then, if some were, an `UPDATE`
    ///   of those whose value changed, with the quality rule.
    /// A key that occurs several times in the batch is applied occurrence by occurrence ("rounds"), so a
    /// batch means the same as upserting its readings one by one. Every writer of `readings` takes the
    /// `sequences` row lock before merging, so merges never race each other; a writer outside the hub
    /// inserting the same key at the same moment makes the batch fail with a unique violation, and it is
    /// retried. Returns once the transaction committed.
    public func upsert(_ readings: [Reading]) async throws -> UpsertSummary {
        guard !readings.isEmpty else { return UpsertSummary() }
        try readings.checkStorable()
        let (chunks, roundSizes) = Self.copyText(readings)
        let count = readings.count
        let logger = self.logger
        let tryFastPath = roundSizes.count == 1 && !mergeRecently.value.load(ordering: .relaxed)
        let lease = Lease.current
        let summary: UpsertSummary = try await withTransaction { connection in
            if let lease { try await Self.checkHeld(lease, connection, logger: logger) }
            try await connection.query(Self.createStaging, logger: logger)
            try await connection.copyFrom(table: "readings_staging", columns: Self.stagingColumns, logger: logger) { writer in
                for chunk in chunks { try await writer.write(chunk) }
            }
            var base: Int64 = 0
            for try await value in try await connection.query(Self.reserveSequence(count), logger: logger).decode(Int64.self) { base = value }
            if tryFastPath {
                try await connection.query("SAVEPOINT new_readings", logger: logger)
                do {
                    let inserted = try await connection.query(Self.insertStaged(round: nil, base: base, onlyAbsent: false), logger: logger).get().metadata.rows ?? 0
                    try await connection.query("RELEASE SAVEPOINT new_readings", logger: logger)
                    return UpsertSummary(inserted: inserted)
                } catch let error as PSQLError where error.serverInfo?[.sqlState] == "23505" {
                    try await connection.query("ROLLBACK TO SAVEPOINT new_readings", logger: logger)
                }
            }
            var summary = UpsertSummary()
            for (index, size) in roundSizes.enumerated() {
                let round = index + 1
                let inserted = try await connection.query(Self.insertStaged(round: round, base: base, onlyAbsent: true), logger: logger).get().metadata.rows ?? 0
                summary.inserted += inserted
                if inserted < size {
                    summary.updated += try await connection.query(Self.updateStaged(round: round, base: base), logger: logger).get().metadata.rows ?? 0
                }
            }
            summary.unchanged = count - summary.inserted - summary.updated
            return summary
        }
        mergeRecently.value.store(summary.inserted < count, ordering: .relaxed)
        return summary
    }

    static let readingColumns = "tenant, series, quantity, ts, resolution, value, unit, quality, source, revision, seq"

    /// Rows of `readingColumns` as stored readings. Cells are decoded one by one (`PostgresCell.decode`
    /// is specialised here); the tuple form `rows.decode((String, ...).self)` instantiates generic
    /// tuple metadata for every row, which cost a third of an export's time.
    static func storedReadings(_ rows: PostgresRowSequence) async throws -> [StoredReading] {
        var result: [StoredReading] = []
        for try await row in rows {
            var cells = row.makeIterator()
            func next<T: PostgresDecodable>(_: T.Type) throws -> T {
                guard let cell = cells.next() else { throw PostgresDecodingError.Code.missingData }
                return try cell.decode(T.self)
            }
            let tenant = try next(String.self), series = try next(String.self), quantity = try next(String.self)
            let ts = try next(Date.self), resolution = try next(String.self), value = try next(Double.self)
            let unit = try next(String.self), quality = try next(String.self), source = try next(String.self)
            let revision = try next(Int.self), seq = try next(Int64.self)
            result.append(StoredReading(
                reading: Reading(
                    tenant: tenant, series: series, quantity: quantity, ts: roundedToMillis(ts), resolution: resolution,
                    value: value, unit: unit, quality: Quality(rawValue: quality) ?? .measured, source: source),
                revision: revision, seq: seq))
        }
        return result
    }

    public func readings(_ query: ReadingQuery) async throws -> [StoredReading] {
        let sql = Self.select(Self.readingColumns, query)
        return try await withConnection { connection in
            try await Self.storedReadings(connection.query(sql, logger: self.logger))
        }
    }

    /// One query, its rows streamed (PostgresNIO reads on as they are consumed): the database renders
    /// the values as its `COPY ... (FORMAT csv)` would, exactly as `ExportWriter` writes `csv` (UTC
    /// times, milliseconds only when there are some; numbers in their shortest form), and the hub
    /// joins them as bytes, quoting the text fields that need it. It so decodes five cells a row
    /// instead of eleven values and makes no strings: that is what lets an export keep up with
    /// `psql \copy` (bench/export). One query is also one snapshot: the export is consistent.
    public func writeCSV(_ query: ReadingQuery, to write: (ByteBuffer) async throws -> Void) async throws {
        let chunkSize = 256 << 10
        let sql = Self.select(Self.csvColumns, query)
        try await withConnectionInTask { connection in
            var out = ByteBuffer()
            out.reserveCapacity(chunkSize + 4096)
            for try await row in try await connection.query(sql, logger: self.logger) {
                var cells = row.makeIterator()
                guard let series = cells.next()?.bytes, let quantity = cells.next()?.bytes, let middle = cells.next()?.bytes,
                      let unit = cells.next()?.bytes, let tail = cells.next()?.bytes
                else { throw PostgresDecodingError.Code.missingData }
                Self.writeCSVField(series, to: &out)
                out.writeStaticString(",")
                Self.writeCSVField(quantity, to: &out)
                out.writeStaticString(",")
                out.writeImmutableBuffer(middle)
                out.writeStaticString(",")
                Self.writeCSVField(unit, to: &out)
                out.writeStaticString(",")
                out.writeImmutableBuffer(tail)
                out.writeStaticString("\n")
                if out.readableBytes >= chunkSize {
                    try await write(out)
                    out = ByteBuffer()
                    out.reserveCapacity(chunkSize + 4096)
                }
            }
            if out.readableBytes > 0 { try await write(out) }
        }
    }

    /// series, quantity, "ts,resolution,value", unit, "quality,revision,seq".
    static let csvColumns = """
        series, quantity, \
        to_char(ts AT TIME ZONE 'UTC', CASE WHEN date_trunc('second', ts) = ts THEN 'YYYY-MM-DD"T"HH24:MI:SS"Z"' ELSE 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"' END) \
        || ',' || resolution || ',' || CASE WHEN value = 0 THEN '0' ELSE value::text END, \
        unit, quality || ',' || revision || ',' || seq
        """

    /// A text field as `ExportWriter.csvField` writes it: quoted when it holds a comma, quote or line
    /// break, and with a leading `'` when a spreadsheet would take it for a formula.
    static func writeCSVField(_ field: ByteBuffer, to out: inout ByteBuffer) {
        let view = field.readableBytesView
        let formula = view.first.map(ExportWriter.startsFormula) ?? false
        guard formula || view.contains(where: { $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\"") || $0 == 10 || $0 == 13 }) else {
            out.writeImmutableBuffer(field)
            return
        }
        out.writeStaticString(formula ? "\"'" : "\"")
        for byte in view {
            if byte == UInt8(ascii: "\"") { out.writeStaticString("\"") }
            out.writeInteger(byte)
        }
        out.writeStaticString("\"")
    }

    /// `SELECT columns` of the readings of `query`, in (series, quantity, ts) order.
    static func select(_ columns: String, _ query: ReadingQuery) -> PostgresQuery {
        var sql = "SELECT \(columns) FROM readings WHERE tenant = $1"
        var binds = PostgresBindings()
        binds.append(query.tenant)
        if !query.series.isEmpty {
            binds.append(query.series)
            sql += " AND series = ANY($\(binds.count))"
        }
        if let quantity = query.quantity {
            binds.append(quantity)
            sql += " AND quantity = $\(binds.count)"
        }
        if let from = query.from {
            binds.append(from)
            sql += " AND ts >= $\(binds.count)"
        }
        if let to = query.to {
            binds.append(to)
            sql += " AND ts < $\(binds.count)"
        }
        if let after = query.after {
            binds.append(after.series)
            binds.append(after.quantity)
            binds.append(after.ts)
            sql += " AND (series, quantity, ts) > ($\(binds.count - 2), $\(binds.count - 1), $\(binds.count))"
        }
        sql += " ORDER BY series, quantity, ts"
        if let limit = query.limit { sql += " LIMIT \(max(0, limit))" }
        return PostgresQuery(unsafeSQL: sql, binds: binds)
    }

    public func changes(tenant: String, after seq: Int64, limit: Int) async throws -> [StoredReading] {
        try await withConnection { connection in
            try await Self.storedReadings(connection.query(
                "SELECT \(unescaped: Self.readingColumns) FROM readings WHERE tenant = \(tenant) AND seq > \(seq) ORDER BY seq LIMIT \(limit)",
                logger: self.logger))
        }
    }

    static func millis(_ date: Date) -> Int64 { date.epochMilliseconds }

    /// The store keeps milliseconds (as SQLite does); PostgreSQL hands back microseconds.
    static func roundedToMillis(_ date: Date) -> Date {
        Date(timeIntervalSince1970: (date.timeIntervalSince1970 * 1000).rounded() / 1000)
    }
}

extension PostgresStore {
    public func totals(_ q: ReadingTotalsQuery) async throws -> [ReadingTotal] {
        guard !q.series.isEmpty, !q.quantities.isEmpty else { return [] }
        var groups = ["quantity"]
        if q.perSeries { groups.insert("series", at: 0) }
        if let bucket = q.bucket { groups.append("date_bin(make_interval(secs => \(max(1, bucket))), ts, TIMESTAMPTZ 'epoch')") }
        var binds = PostgresBindings()
        binds.append(q.tenant)
        binds.append(q.series)
        binds.append(q.quantities)
        binds.append(q.from)
        binds.append(q.to)
        let sql = """
            SELECT \(groups.joined(separator: ", ")), SUM(value), COUNT(*) FROM readings
            WHERE tenant = $1 AND series = ANY($2) AND quantity = ANY($3) AND ts >= $4 AND ts < $5
            GROUP BY \(groups.joined(separator: ", ")) ORDER BY \(groups.joined(separator: ", "))
            """
        let query = PostgresQuery(unsafeSQL: sql, binds: binds)
        return try await withConnection { connection in
            var result: [ReadingTotal] = []
            for try await row in try await connection.query(query, logger: self.logger) {
                var cells = row.makeIterator()
                func next<T: PostgresDecodable>(_: T.Type) throws -> T {
                    guard let cell = cells.next() else { throw PostgresDecodingError.Code.missingData }
                    return try cell.decode(T.self)
                }
                let series = q.perSeries ? try next(String.self) : nil
                let quantity = try next(String.self)
                let start = q.bucket == nil ? nil : Self.roundedToMillis(try next(Date.self))
                let sum = try next(Double.self), count = try next(Int.self)
                result.append(ReadingTotal(series: series, quantity: quantity, start: start, sum: sum, count: count))
            }
            return result
        }
    }
}
