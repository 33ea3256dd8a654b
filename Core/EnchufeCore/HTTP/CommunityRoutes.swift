import Foundation
import Hummingbird
import HummingbirdCore

/// `GET /api/v1/communities/{id}/settlement?month=YYYY-MM[&format=csv]`: a community market's
/// monthly statement per member (`Settlement`), audit-logged like an export.
extension HTTPServer {
    static func addCommunityRoutes(_ router: Router<HubRequestContext>, hub: Hub) {
        let store = hub.environment.store
        router.get("/api/v1/communities/:id/settlement") { request, context -> Response in
            try await authorized(request, scope: "read", store: store) { key in
                let community = context.parameters.get("id") ?? ""
                let p = request.uri.queryParameters
                guard let monthText = p["month"].map(String.init), let month = Settlement.month(monthText) else {
                    return problem(.badRequest, title: "Bad query", detail: "month is required as YYYY-MM (a local month of Madrid), e.g. month=2026-05")
                }
                let format = p["format"].map(String.init) ?? "json"
                guard format == "json" || format == "csv" else {
                    return problem(.badRequest, title: "Bad query", detail: "format '\(format)' is not json or csv")
                }
                let members = try await CommunityMembers(community, tenant: key.tenant, store: store)
                guard !members.isEmpty else {
                    return problem(.notFound, title: "No such community", detail: "this key's tenant has no supplies in community '\(community)'")
                }
                let settlement = try await Settlement.statement(members, tenant: key.tenant, from: month.from, to: month.to, store: store)
                try? await store.appendAudit(
                    tenant: key.tenant, actor: "key:" + key.id, action: "settlement",
                    detail: ["route": .string("/api/v1/communities/\(community)/settlement"), "query": .string(request.uri.query ?? "")],
                    at: hub.environment.clock.now())
                if format == "csv" {
                    var headers: HTTPFields = [.contentType: ExportFormat.settlement.contentType]
                    headers[.contentDisposition] = "attachment; filename=\"settlement_\(community)_\(monthText).csv\""
                    return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: settlement.csv)))
                }
                var body = settlement.json(community: community, from: month.from, to: month.to).objectValue ?? [:]
                body["month"] = .string(monthText)
                return json(.ok, .object(body))
            }
        }
    }
}
