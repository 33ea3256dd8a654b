import Foundation
import NIOCore

/// Stored readings written out in an export format, chunk by chunk (the HTTP exports and
/// `file.out` share it).
public enum Exporter {
    /// Writes the readings of `query` in `format` (a table or curve format) to `write`, awaiting each
    /// chunk: memory holds a page (tables) or one supply's readings (curves) at a time. Plain CSV
    /// is rendered by the store (`Store.writeCSV`).
    public static func write(
        _ format: ExportFormat, _ query: ReadingQuery, store: any Store, zone: TimeZone = LocalDay.madrid, resampler: Resampler? = nil,
        to write: (ByteBuffer) async throws -> Void
    ) async throws {
        var export = ExportWriter(format, zone: zone)
        try await write(ByteBuffer(string: export.start()))
        switch format {
        case .csv where resampler == nil:
            try await store.writeCSV(query, to: write)
        case .settlement:
            for try await page in store.readingPages(query) { _ = export.rows(page) }
        case .csv, .json, .ndjson:
            var resampler = resampler
            for try await page in store.readingPages(query) {
                var rows = page
                if resampler != nil { rows = page.flatMap { resampler!.add($0) } }
                if !rows.isEmpty { try await write(ByteBuffer(string: export.rows(rows))) }
            }
            if let last = resampler?.finish() { try await write(ByteBuffer(string: export.rows([last]))) }
        case .datadisCSV, .f5d:
            // Pages come in series order: a supply's readings are together, and only one supply's are
            // held. Curves are hourly: quarter-hours are summed into their hours.
            var hourly = Resampler(seconds: 3600, zone: zone)
            var current: String?
            var held: [Reading] = []
            func hold(_ r: StoredReading) async throws {
                if r.reading.series != current {
                    if let current, !held.isEmpty { try await write(ByteBuffer(string: export.curveRows(cups: current, held))) }
                    current = r.reading.series
                    held = []
                }
                held.append(r.reading)
            }
            for try await page in store.readingPages(query) {
                for r in page {
                    for h in hourly.add(r) { try await hold(h) }
                }
            }
            if let last = hourly.finish() { try await hold(last) }
            if let current, !held.isEmpty { try await write(ByteBuffer(string: export.curveRows(cups: current, held))) }
        case .coefficients:
            let (file, _) = try await coefficientFile(query, store: store, zone: zone)
            try await write(ByteBuffer(string: file.text()))
        }
        try await write(ByteBuffer(string: export.end()))
    }

    /// The coefficient file of the `coefficient` readings of `query`, and its year; throws a
    /// `CoefficientFile.Problem` when they do not make a valid file.
    public static func coefficientFile(
        _ query: ReadingQuery, store: any Store, borderPoint: String = "0F", zone: TimeZone = LocalDay.madrid
    ) async throws -> (file: CoefficientFile, year: Int?) {
        var readings: [Reading] = []
        for try await page in store.readingPages(query) { readings += page.map(\.reading) }
        let file = try CoefficientFile(readings: readings, borderPoint: borderPoint, zone: zone)
        return (file, readings.first.map { LocalDay(containing: $0.ts, in: zone).year })
    }
}
