import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import NIOCore

/// The routes billing applications pull from: readings (streamed), the changes feed.
extension HTTPServer {
    static func addDataRoutes(_ router: Router<BasicRequestContext>, hub: Hub) {
        let store = hub.environment.store
        router.get("/api/v1/readings") { request, _ -> Response in
            try await authorized(request, scope: "read", store: store) { key in
                let query: ReadingsRequest
                do {
                    query = try ReadingsRequest(request.uri.queryParameters, tenant: key.tenant)
                } catch {
                    return problem(.badRequest, title: "Bad query", detail: "\(error)")
                }
                try? await store.appendAudit(
                    tenant: key.tenant, actor: "key:" + key.id, action: "export",
                    detail: ["route": "/api/v1/readings", "query": .string(request.uri.query ?? "")], at: hub.environment.clock.now())
                return streamed(query.format, query.query, store: store, resampler: query.resampler)
            }
        }
        router.get("/api/v1/changes") { request, _ -> Response in
            try await authorized(request, scope: "read", store: store) { key in
                let parameters = request.uri.queryParameters
                guard let after = Int64(parameters["after"].map(String.init) ?? "0"), after >= 0 else {
                    return problem(.badRequest, title: "Bad query", detail: "after must be a sequence number (0 or the 'next' of the previous page)")
                }
                guard let limit = Int(parameters["limit"].map(String.init) ?? "1000"), (1...10_000).contains(limit) else {
                    return problem(.badRequest, title: "Bad query", detail: "limit must be between 1 and 10000")
                }
                let changes = try await store.changes(tenant: key.tenant, after: after, limit: limit)
                try? await store.appendAudit(
                    tenant: key.tenant, actor: "key:" + key.id, action: "export",
                    detail: ["route": "/api/v1/changes", "after": .number(Double(after)), "count": .number(Double(changes.count))], at: hub.environment.clock.now())
                return json(.ok, [
                    "changes": .array(changes.map(ExportWriter.object)),
                    "next": .number(Double(changes.last?.seq ?? after)),
                    "more": .bool(changes.count == limit),
                ])
            }
        }
    }

    /// A response written page by page as the store hands the pages out. Plain CSV is rendered by
    /// the store itself (`Store.writeCSV`: PostgreSQL formats the rows as its COPY would).
    static func streamed(_ format: ExportFormat, _ query: ReadingQuery, store: any Store, resampler: Resampler?) -> Response {
        Response(
            status: .ok, headers: [.contentType: format.contentType],
            body: ResponseBody { writer in
                var export = ExportWriter(format)
                try await writer.write(ByteBuffer(string: export.start()))
                if format == .csv && resampler == nil {
                    try await store.writeCSV(query) { try await writer.write($0) }
                } else {
                    var resampler = resampler
                    for try await page in store.readingPages(query) {
                        var rows = page
                        if resampler != nil { rows = page.flatMap { resampler!.add($0) } }
                        if !rows.isEmpty { try await writer.write(ByteBuffer(string: export.rows(rows))) }
                    }
                    if let last = resampler?.finish() { try await writer.write(ByteBuffer(string: export.rows([last]))) }
                }
                try await writer.write(ByteBuffer(string: export.end()))
                try await writer.finish(nil)
            })
    }
}

/// `GET /api/v1/readings?series=&quantity=&from=&to=&resolution=&format=`, read and checked.
struct ReadingsRequest {
    struct Problem: Error, CustomStringConvertible { var description: String }

    var query: ReadingQuery
    var format: ExportFormat
    var resampler: Resampler?

    init(_ p: FlatDictionary<Substring, Substring>, tenant: String) throws(Problem) {
        func text(_ name: String) -> String? { p[Substring(name)].map(String.init).flatMap { $0.isEmpty ? nil : $0 } }
        let formatName = text("format") ?? "json"
        guard let format = ExportFormat(rawValue: formatName), !format.isCurve else {
            throw Problem(description: "format '\(formatName)' is not one of json, ndjson, csv (curve formats are served by named exports)")
        }
        self.format = format
        let series = p[values: "series"].flatMap { $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } }
        query = ReadingQuery(tenant: tenant, series: series, quantity: text("quantity"), from: try Self.instant(text("from"), "from"), to: try Self.instant(text("to"), "to"))
        if let from = query.from, let to = query.to, to <= from { throw Problem(description: "to must be after from") }
        if let resolution = text("resolution") {
            guard let seconds = ISODuration.seconds(resolution), seconds >= 900, seconds % 900 == 0 || seconds % 86_400 == 0 else {
                throw Problem(description: "resolution '\(resolution)' is not one readings are aggregated to: PT15M, PT30M, PT1H, P1D")
            }
            resampler = Resampler(seconds: seconds)
        }
    }

    /// An ISO-8601 instant with its offset, or a date (its midnight in Madrid).
    static func instant(_ text: String?, _ name: String) throws(Problem) -> Date? {
        guard let text else { return nil }
        if let day = LocalDay(text) { return day.start(in: LocalDay.madrid) }
        guard let date = try? InstantFormat.iso8601.instant(.string(text), zone: LocalDay.madrid) else {
            throw Problem(description: "\(name) '\(text)' is neither a date (2026-01-31) nor an instant with an offset (2026-01-31T00:00:00+01:00)")
        }
        return date
    }
}
