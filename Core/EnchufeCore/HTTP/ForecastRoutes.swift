import Foundation
import Hummingbird
import HummingbirdCore

/// `GET /api/v1/forecasts` and `GET /api/v1/forecasts/accuracy`: forecasts as issued, and how
/// good they were.
extension HTTPServer {
    static func addForecastRoutes(_ router: Router<HubRequestContext>, hub: Hub) {
        let store = hub.environment.store
        router.get("/api/v1/forecasts") { request, _ -> Response in
            try await authorized(request, scope: "read", store: store) { key in
                let query: ForecastQuery
                do {
                    query = try ForecastsRequest(request.uri.queryParameters, tenant: key.tenant, vintages: true).query
                } catch {
                    return problem(.badRequest, title: "Bad query", detail: "\(error)")
                }
                let forecasts = try await store.forecasts(query)
                return json(.ok, ["forecasts": .array(forecasts.map(\.json))])
            }
        }
        router.get("/api/v1/forecasts/accuracy") { request, _ -> Response in
            try await authorized(request, scope: "read", store: store) { key in
                let query: ForecastQuery
                do {
                    query = try ForecastsRequest(request.uri.queryParameters, tenant: key.tenant, vintages: false).query
                } catch {
                    return problem(.badRequest, title: "Bad query", detail: "\(error)")
                }
                guard let quantity = query.quantity else {
                    return problem(.badRequest, title: "Bad query", detail: "quantity is required: the naive forecast compared with depends on it")
                }
                let results = try await ForecastAccuracy.report(query, quantity: quantity, store: store)
                let baseline = ForecastAccuracy.Baseline.of(quantity)
                return json(.ok, [
                    "from": .string(ISO8601.string(query.from)), "to": .string(ISO8601.string(query.to)),
                    "baseline": .string(baseline.rawValue), "accuracy": .array(results),
                ])
            }
        }
    }
}

/// `series=&quantity=&from=&to=` (and `issued=latest|INSTANT` for the forecasts), checked.
struct ForecastsRequest {
    struct Problem: Error, CustomStringConvertible { var description: String }

    var query: ForecastQuery

    init(_ p: FlatDictionary<Substring, Substring>, tenant: String, vintages: Bool) throws(Problem) {
        func text(_ name: String) -> String? { p[Substring(name)].map(String.init).flatMap { $0.isEmpty ? nil : $0 } }
        let series = p[values: "series"].flatMap { $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } }
        let from: Date?, to: Date?
        do {
            from = try ReadingsRequest.instant(text("from"), "from")
            to = try ReadingsRequest.instant(text("to"), "to")
        } catch {
            throw Problem(description: error.description)
        }
        guard let from, let to else { throw Problem(description: "from and to are required: dates (2026-01-31) or instants with an offset") }
        guard to > from, to.timeIntervalSince(from) <= 400 * 86_400 else { throw Problem(description: "to must be after from, and at most 400 days later") }
        var vintage: Date? = nil
        if vintages {
            switch text("issued") ?? "latest" {
            case "latest": vintage = .distantFuture
            case let instant:
                do {
                    vintage = try ReadingsRequest.instant(instant, "issued")
                } catch {
                    throw Problem(description: "issued must be 'latest' or an instant: \(error.description)")
                }
            }
        }
        query = ForecastQuery(tenant: tenant, series: series, quantity: text("quantity"), from: from, to: to, vintage: vintage)
    }
}
