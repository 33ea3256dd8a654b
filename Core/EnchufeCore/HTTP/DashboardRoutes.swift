import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The community dashboard: `GET /api/v1/communities` (the communities a key's tenant has members
/// in), `GET /api/v1/communities/{id}/dashboard` (`CommunityDashboard`'s numbers) and the pages
/// `/ui/communities` and `/ui/communities/{id}` that draw them (`DashboardPage`). A `read` key
/// sees the community and each member; a `totals` key (for members) the community's totals only;
/// keyless requests from this machine (`LocalAccess`) every tenant's, as the operator routes.
extension HTTPServer {
    /// Who asks: the operator (every tenant, every detail) or a key's tenant.
    struct DashboardViewer {
        var tenant: String?
        var memberDetail: Bool
    }

    static func dashboardViewer(
        _ request: Request, _ context: HubRequestContext, store: any Store, access: LocalAccess, _ body: (DashboardViewer) async throws -> Response
    ) async throws -> Response {
        if access.isOperator(request, peer: context.peer) { return try await body(DashboardViewer(tenant: nil, memberDetail: true)) }
        return try await authorized(request, scope: "totals", store: store) { key in
            try await body(DashboardViewer(tenant: key.tenant, memberDetail: APIKeys.allows(key.scopes, "read")))
        }
    }

    /// The communities of `tenants` with their member counts, by tenant and id.
    static func communities(tenants: [String], store: any Store) async throws -> [(tenant: String, id: String, members: Int, zone: String?)] {
        var result: [(tenant: String, id: String, members: Int, zone: String?)] = []
        for tenant in tenants {
            let supplies = try await store.supplies(tenant: tenant)
            for (id, members) in Dictionary(grouping: supplies.filter { $0.community != nil }, by: { $0.community! }) {
                result.append((tenant, id, Set(members.map(\.cups)).count, members.compactMap(\.zone).first))
            }
        }
        return result.sorted { ($0.tenant, $0.id) < ($1.tenant, $1.id) }
    }

    static func addDashboardRoutes(_ router: Router<HubRequestContext>, hub: Hub, access: LocalAccess) {
        let store = hub.environment.store
        // The key's tenant, or for the operator every tenant with supplies.
        @Sendable func tenants(_ viewer: DashboardViewer) async throws -> [String] {
            if let tenant = viewer.tenant { return [tenant] }
            return try await store.supplyTenants()
        }
        router.get("/api/v1/communities") { request, context -> Response in
            try await dashboardViewer(request, context, store: store, access: access) { viewer in
                let list = try await communities(tenants: tenants(viewer), store: store)
                return json(.ok, ["communities": .array(list.map {
                    ["tenant": .string($0.tenant), "id": .string($0.id), "members": .number(Double($0.members)), "zone": $0.zone.map(JSONValue.string) ?? .null]
                })])
            }
        }
        router.get("/api/v1/communities/:id/dashboard") { request, context -> Response in
            try await dashboardViewer(request, context, store: store, access: access) { viewer in
                let id = context.parameters.get("id") ?? ""
                let p = request.uri.queryParameters
                func text(_ name: String) -> String? { p[Substring(name)].map(String.init).flatMap { $0.isEmpty ? nil : $0 } }
                guard let range = CommunityDashboard.Range(rawValue: text("range") ?? "day") else {
                    return problem(.badRequest, title: "Bad query", detail: "range must be one of day, week, month")
                }
                guard let vintage = CommunityDashboard.Vintage(rawValue: text("vintage") ?? "latest") else {
                    return problem(.badRequest, title: "Bad query", detail: "vintage must be latest or day-ahead")
                }
                let today = LocalDay(containing: hub.environment.clock.now())
                guard let day = text("date").map({ LocalDay($0) }) ?? today else {
                    return problem(.badRequest, title: "Bad query", detail: "date must be a local date YYYY-MM-DD (e.g. 2026-10-25), of a year from 1970 to 2099")
                }
                var candidates = try await tenants(viewer)
                if let asked = text("tenant") { candidates = candidates.filter { $0 == asked } }
                var found: [(tenant: String, members: CommunityMembers)] = []
                for tenant in candidates {
                    let members = try await CommunityMembers(id, tenant: tenant, store: store)
                    if !members.isEmpty { found.append((tenant, members)) }
                }
                guard let (tenant, members) = found.first else {
                    return problem(.notFound, title: "No such community", detail: "no supplies in community '\(id)'\(viewer.tenant.map { " of this key's tenant '\($0)'" } ?? "")")
                }
                guard found.count == 1 else {
                    return problem(.badRequest, title: "Bad query", detail: "community '\(id)' exists in tenants \(found.map(\.tenant).joined(separator: ", ")): name one with tenant=")
                }
                let body = try await CommunityDashboard.build(
                    .init(community: id, tenant: tenant, range: range, day: day, vintage: vintage, memberDetail: viewer.memberDetail), members: members, store: store)
                return json(.ok, body)
            }
        }
        // The pages are the same for everyone: their numbers come from the routes above, with the key
        // the visitor types once (kept in the tab's session storage).
        for path in ["/ui/communities", "/ui/communities/:id"] {
            router.get(RouterPath(path)) { _, _ -> Response in
                var headers = HTTPFields()
                headers[.contentType] = "text/html; charset=utf-8"
                headers[.cacheControl] = "no-cache"
                headers[HTTPField.Name("Content-Security-Policy")!] = "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
                return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: DashboardPage.html)))
            }
        }
    }
}
