import EnchufeCore
import Foundation
import NIOCore
import PostgresNIO

extension PostgresStore {
    /// Taken (per transaction) around the assignment of `seq`, so that change numbers become visible in
    /// the order they were given: a reader of the changes feed never sees seq N+1 before seq N commits.
    static let sequenceLock: Int64 = 0x656E_6368_7566_6531  // "enchufe1"

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

    /// Merges one round of the staging table (rows whose key appears once in it) into `readings`, with
    /// the upsert rules of the store protocol. Returns (inserted, updated).
    static func upsertRound(_ round: Int) -> PostgresQuery {
        """
        WITH up AS (
            INSERT INTO readings AS r (tenant, series, quantity, ts, resolution, value, unit, quality, source, revision, seq, updated_at)
            SELECT tenant, series, quantity, timestamptz 'epoch' + ts_ms * interval '1 millisecond', resolution, value, unit,
                   quality, source, 1, nextval('readings_seq'), now()
            FROM readings_staging WHERE round = \(round) ORDER BY ord
            ON CONFLICT (tenant, series, quantity, ts) DO UPDATE SET
                resolution = excluded.resolution, value = excluded.value, unit = excluded.unit, quality = excluded.quality,
                source = excluded.source, revision = r.revision + 1, seq = excluded.seq, updated_at = excluded.updated_at
            WHERE \(unescaped: qualityRank("excluded.quality")) >= \(unescaped: qualityRank("r.quality"))
              AND (excluded.value IS DISTINCT FROM r.value OR excluded.quality <> r.quality
                   OR excluded.unit <> r.unit OR excluded.resolution <> r.resolution)
            RETURNING r.revision
        )
        SELECT count(*) FILTER (WHERE revision = 1), count(*) FILTER (WHERE revision > 1) FROM up
        """
    }

    /// Upserts a batch in one transaction: the rows go to a temporary staging table with `COPY ... FROM
    /// STDIN` (text format), then one `INSERT ... SELECT ... ON CONFLICT` merges them. A key that occurs
    /// several times in the batch is applied occurrence by occurrence ("rounds"), so the batch means
    /// the same as upserting its readings one by one. Returns once the transaction committed.
    public func upsert(_ readings: [Reading]) async throws -> UpsertSummary {
        guard !readings.isEmpty else { return UpsertSummary() }
        let (chunks, rounds) = Self.copyText(readings)
        let count = readings.count
        let logger = self.logger
        return try await withTransaction { connection in
            try await connection.query(Self.createStaging, logger: logger)
            try await connection.copyFrom(table: "readings_staging", columns: Self.stagingColumns, logger: logger) { writer in
                for chunk in chunks { try await writer.write(chunk) }
            }
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.sequenceLock))", logger: logger)
            var summary = UpsertSummary()
            for round in 1...rounds {
                for try await (inserted, updated) in try await connection.query(Self.upsertRound(round), logger: logger).decode((Int64, Int64).self) {
                    summary.inserted += Int(inserted)
                    summary.updated += Int(updated)
                }
            }
            summary.unchanged = count - summary.inserted - summary.updated
            return summary
        }
    }

    /// The batch as COPY text rows (tab-separated, escaped), in chunks of about 256 KiB, and how many
    /// rounds its repeated keys need.
    static func copyText(_ readings: [Reading]) -> ([ByteBuffer], Int) {
        struct Key: Hashable {
            var tenant: String, series: String, quantity: String, ts: Int64
        }
        var occurrences: [Key: Int] = [:]
        occurrences.reserveCapacity(readings.count)
        var rounds = 1
        var chunks: [ByteBuffer] = []
        let chunkSize = 256 * 1024
        var buffer = ByteBufferAllocator().buffer(capacity: chunkSize + 4096)
        for (i, r) in readings.enumerated() {
            let ms = millis(r.ts)
            let key = Key(tenant: r.tenant, series: r.series, quantity: r.quantity, ts: ms)
            let round = (occurrences[key] ?? 0) + 1
            occurrences[key] = round
            rounds = max(rounds, round)
            buffer.writeDecimal(i)
            buffer.writeStaticString("\t")
            buffer.writeDecimal(round)
            buffer.writeStaticString("\t")
            buffer.writeCopyText(r.tenant)
            buffer.writeStaticString("\t")
            buffer.writeCopyText(r.series)
            buffer.writeStaticString("\t")
            buffer.writeCopyText(r.quantity)
            buffer.writeStaticString("\t")
            buffer.writeDecimal(ms)
            buffer.writeStaticString("\t")
            buffer.writeCopyText(r.resolution)
            buffer.writeStaticString("\t")
            buffer.writeCopyDouble(r.value)
            buffer.writeStaticString("\t")
            buffer.writeCopyText(r.unit)
            buffer.writeStaticString("\t")
            buffer.writeString(r.quality.rawValue)
            buffer.writeStaticString("\t")
            buffer.writeCopyText(r.source)
            buffer.writeStaticString("\n")
            if buffer.readableBytes >= chunkSize {
                chunks.append(buffer)
                buffer = ByteBufferAllocator().buffer(capacity: chunkSize + 4096)
            }
        }
        if buffer.readableBytes > 0 { chunks.append(buffer) }
        return (chunks, rounds)
    }

    static let readingColumns = "tenant, series, quantity, ts, resolution, value, unit, quality, source, revision, seq"

    static func storedReadings(_ rows: PostgresRowSequence) async throws -> [StoredReading] {
        var result: [StoredReading] = []
        for try await (tenant, series, quantity, ts, resolution, value, unit, quality, source, revision, seq) in rows.decode(
            (String, String, String, Date, String, Double, String, String, String, Int, Int64).self)
        {
            result.append(StoredReading(
                reading: Reading(
                    tenant: tenant, series: series, quantity: quantity, ts: roundedToMillis(ts), resolution: resolution,
                    value: value, unit: unit, quality: Quality(rawValue: quality) ?? .measured, source: source),
                revision: revision, seq: seq))
        }
        return result
    }

    public func readings(_ query: ReadingQuery) async throws -> [StoredReading] {
        var sql = "SELECT \(Self.readingColumns) FROM readings WHERE tenant = $1"
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
        sql += " ORDER BY series, quantity, ts"
        if let limit = query.limit { sql += " LIMIT \(max(0, limit))" }
        let finalSQL = PostgresQuery(unsafeSQL: sql, binds: binds)
        return try await withConnection { connection in
            try await Self.storedReadings(connection.query(finalSQL, logger: self.logger))
        }
    }

    public func changes(tenant: String, after seq: Int64, limit: Int) async throws -> [StoredReading] {
        try await withConnection { connection in
            try await Self.storedReadings(connection.query(
                "SELECT \(unescaped: Self.readingColumns) FROM readings WHERE tenant = \(tenant) AND seq > \(seq) ORDER BY seq LIMIT \(limit)",
                logger: self.logger))
        }
    }

    static func millis(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }

    /// The store keeps milliseconds (as SQLite does); PostgreSQL hands back microseconds.
    static func roundedToMillis(_ date: Date) -> Date {
        Date(timeIntervalSince1970: (date.timeIntervalSince1970 * 1000).rounded() / 1000)
    }
}

extension ByteBuffer {
    /// A COPY text field: backslash, tab, newline and carriage return escaped.
    mutating func writeCopyText(_ text: String) {
        var needsEscape = false
        for byte in text.utf8 where byte == UInt8(ascii: "\\") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") {
            needsEscape = true
            break
        }
        guard needsEscape else {
            writeString(text)
            return
        }
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\\"): writeStaticString("\\\\")
            case UInt8(ascii: "\t"): writeStaticString("\\t")
            case UInt8(ascii: "\n"): writeStaticString("\\n")
            case UInt8(ascii: "\r"): writeStaticString("\\r")
            default: writeInteger(byte, as: UInt8.self)
            }
        }
    }

    mutating func writeCopyDouble(_ value: Double) {
        if value.isNaN {
            writeStaticString("NaN")
        } else if value.isInfinite {
            writeStaticString(value > 0 ? "Infinity" : "-Infinity")
        } else {
            writeString(value.description)
        }
    }

    /// An integer in decimal digits (ByteBuffer's own writeInteger writes binary).
    mutating func writeDecimal<I: BinaryInteger>(_ value: I) {
        writeString(String(value))
    }
}
