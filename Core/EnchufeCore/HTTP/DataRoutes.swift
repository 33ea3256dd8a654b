import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import NIOCore

/// The routes billing applications pull from: readings (streamed), the changes feed.
extension HTTPServer {
    static func addDataRoutes(_ router: Router<HubRequestContext>, hub: Hub) {
        addExportRoute(router, hub: hub)
        addBillingRoute(router, hub: hub)
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
                guard let after = Int64(parameters["after"].flatMap { $0.isEmpty ? nil : String($0) } ?? "0"), after >= 0 else {
                    return problem(.badRequest, title: "Bad query", detail: "after must be a sequence number (0 or the 'next' of the previous page)")
                }
                guard let limit = Int(parameters["limit"].flatMap { $0.isEmpty ? nil : String($0) } ?? "1000"), (1...10_000).contains(limit) else {
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

    /// `GET /api/v1/alerts?state=raised&limit=N`: the tenant's alerts and their latest changes (a
    /// read key's tenant; every tenant's from loopback with no key, for the status page).
    static func addAlertRoute(_ router: Router<HubRequestContext>, hub: Hub, access: LocalAccess) {
        let store = hub.environment.store
        router.get("/api/v1/alerts") { request, context -> Response in
            try await asOperator(request, context, hub: hub, access: access, scope: "read") { who in
                let p = request.uri.queryParameters
                let state = p["state"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
                guard state == nil || state == "raised" else {
                    return problem(.badRequest, title: "Bad query", detail: "state must be 'raised' (or left out for every alert)")
                }
                guard let limit = Int(p["limit"].flatMap { $0.isEmpty ? nil : String($0) } ?? "50"), (1...1000).contains(limit) else {
                    return problem(.badRequest, title: "Bad query", detail: "limit must be between 1 and 1000")
                }
                let alerts = try await store.alerts(tenant: who.tenant).filter { state == nil || $0.raised }
                let recent = try await store.alertEvents(tenant: who.tenant, limit: limit)
                return json(.ok, ["alerts": .array(alerts.map(alertJSON)), "recent": .array(recent.map(\.json))])
            }
        }
    }

    static func alertJSON(_ a: AlertState) -> JSONValue {
        [
            "alert": .string(a.name), "state": .string(a.raised ? "raised" : "cleared"), "message": .string(a.message),
            "series": .string(a.key.series), "quantity": .string(a.key.quantity),
            "changed_at": a.since.map { .string(ISO8601.string($0)) } ?? .null, "value": a.value.map(JSONValue.number) ?? .null,
            "last_reading": a.lastTs.map { .string(ISO8601.string($0)) } ?? .null,
            "flow": .string(a.key.flow), "node": .string(a.key.node), "tenant": .string(a.key.tenant),
            "updated_at": .string(ISO8601.string(a.updatedAt)),
        ]
    }

    /// `GET /api/v1/billing/periods?from=&to=&cups=`: per supply and tariff period, the energies and
    /// how complete the curve is (`BillingPeriods`).
    static func addBillingRoute(_ router: Router<HubRequestContext>, hub: Hub) {
        let store = hub.environment.store
        router.get("/api/v1/billing/periods") { request, _ -> Response in
            try await authorized(request, scope: "read", store: store) { key in
                let p = request.uri.queryParameters
                guard let from = p["from"].flatMap({ LocalDay(String($0)) }), let to = p["to"].flatMap({ LocalDay(String($0)) }) else {
                    return problem(.badRequest, title: "Bad query", detail: "from and to are required local dates (YYYY-MM-DD; to is excluded)")
                }
                guard from < to, to <= from.adding(days: 400) else {
                    return problem(.badRequest, title: "Bad query", detail: "to must be after from, and at most 400 days later")
                }
                let records = Dictionary(grouping: try await store.supplies(tenant: key.tenant), by: \.cups)
                let asked = p[values: "cups"].flatMap { $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } }
                let cups = asked.isEmpty ? records.keys.sorted() : asked
                var supplies: [JSONValue] = []
                for c in cups {
                    let records = (records[c] ?? []).sorted { ($0.validFrom ?? "") < ($1.validFrom ?? "") }
                    supplies.append(BillingPeriods.json(try await BillingPeriods.supply(c, records: records, from: from, to: to, store: store, tenant: key.tenant)))
                }
                try? await store.appendAudit(
                    tenant: key.tenant, actor: "key:" + key.id, action: "export",
                    detail: ["route": "/api/v1/billing/periods", "query": .string(request.uri.query ?? "")], at: hub.environment.clock.now())
                return json(.ok, ["from": .string(from.description), "to": .string(to.description), "supplies": .array(supplies)])
            }
        }
    }

    /// `GET /api/v1/exports/{name}?from=&to=`: a named export (`export` node) of the key's tenant.
    static func addExportRoute(_ router: Router<HubRequestContext>, hub: Hub) {
        let store = hub.environment.store
        router.get("/api/v1/exports/:name") { request, context -> Response in
            try await authorized(request, scope: "read", store: store) { key in
                let name = context.parameters.get("name") ?? ""
                guard let export = hub.environment.exports.export(name), export.tenant == key.tenant else {
                    return problem(.notFound, title: "No such export", detail: "no running flow serves an export named '\(name)' to this key's tenant")
                }
                let zone = export.zone.timeZone
                let query: ReadingQuery
                do {
                    func text(_ n: String) -> String? { request.uri.queryParameters[Substring(n)].map(String.init).flatMap { $0.isEmpty ? nil : $0 } }
                    let from = try ReadingsRequest.instant(text("from"), "from", zone: zone), to = try ReadingsRequest.instant(text("to"), "to", zone: zone)
                    if let from, let to, to <= from { throw ReadingsRequest.Problem(description: "to must be after from") }
                    query = ReadingQuery(tenant: key.tenant, series: export.series, quantity: export.quantity, from: from, to: to)
                } catch {
                    return problem(.badRequest, title: "Bad query", detail: "\(error)")
                }
                try? await store.appendAudit(
                    tenant: key.tenant, actor: "key:" + key.id, action: "export",
                    detail: ["route": .string("/api/v1/exports/\(name)"), "query": .string(request.uri.query ?? "")], at: hub.environment.clock.now())
                switch export.format {
                case .csv, .json, .ndjson, .datadisCSV, .f5d, .settlement:
                    return streamed(export.format, query, store: store, zone: zone, resampler: export.resolution.map { Resampler(seconds: $0, zone: zone) })
                case .coefficients:
                    let coefficients: (file: CoefficientFile, year: Int?)
                    do {
                        coefficients = try await Exporter.coefficientFile(query, store: store, borderPoint: export.borderPoint, zone: zone)
                    } catch let problem as CoefficientFile.Problem {
                        return HTTPServer.problem(.conflict, title: "No valid coefficient file", detail: problem.description)
                    }
                    var headers: HTTPFields = [.contentType: export.format.contentType]
                    if let cau = export.cau, let year = coefficients.year {
                        headers[.contentDisposition] = "attachment; filename=\"\(CoefficientFile.name(cau: cau, year: year))\""
                    }
                    return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: coefficients.file.text())))
                }
            }
        }
    }

    /// A response written chunk by chunk as the store hands the readings out (`Exporter`).
    static func streamed(_ format: ExportFormat, _ query: ReadingQuery, store: any Store, zone: TimeZone = LocalDay.madrid, resampler: Resampler?) -> Response {
        Response(
            status: .ok, headers: [.contentType: format.contentType],
            body: ResponseBody { writer in
                try await Exporter.write(format, query, store: store, zone: zone, resampler: resampler) { try await writer.write($0) }
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
        guard let format = ExportFormat(rawValue: formatName), format.isTable else {
            throw Problem(description: "format '\(formatName)' is not one of json, ndjson, csv (curve and coefficient files are served by named exports)")
        }
        self.format = format
        let series = p[values: "series"].flatMap { $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } }
        query = ReadingQuery(tenant: tenant, series: series, quantity: text("quantity"), from: try Self.instant(text("from"), "from"), to: try Self.instant(text("to"), "to"))
        if let from = query.from, let to = query.to, to <= from { throw Problem(description: "to must be after from") }
        if let resolution = text("resolution") {
            guard let seconds = Resampler.seconds(resolution) else {
                throw Problem(description: "resolution '\(resolution)' is not one readings are aggregated to: PT15M, PT30M, PT1H, P1D")
            }
            resampler = Resampler(seconds: seconds)
        }
    }

    /// An ISO-8601 instant with its offset, or a date (its midnight in `zone`).
    static func instant(_ text: String?, _ name: String, zone: TimeZone = LocalDay.madrid) throws(Problem) -> Date? {
        guard let text else { return nil }
        if let day = LocalDay(text) { return day.start(in: zone) }
        guard let date = try? InstantFormat.iso8601.instant(.string(text), zone: LocalDay.madrid) else {
            throw Problem(description: "\(name) '\(text)' is neither a date (2026-01-31) nor an instant with an offset (2026-01-31T00:00:00+01:00)")
        }
        return date
    }
}
