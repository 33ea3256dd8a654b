import Foundation

/// A community's members: the tenant's supplies whose `community` it is (`PUT
/// /api/v1/supplies/{cups}`), for the nodes and routes that work per community.
public struct CommunityMembers: Sendable {
    /// Their records (a supply may have one per validity period).
    public let supplies: [SupplyPoint]
    /// Their CUPS, each once, sorted.
    public let cups: [String]

    public init(_ community: String, tenant: String, store: any Store) async throws {
        supplies = try await store.supplies(tenant: tenant).filter { $0.community == community }
        cups = Set(supplies.map(\.cups)).sorted()
    }

    public var isEmpty: Bool { cups.isEmpty }

    /// The members, or the reason a node of type `type` cannot work without any.
    static func required(_ community: String, by type: String, _ context: NodeContext) async throws -> CommunityMembers {
        let members = try await CommunityMembers(community, tenant: context.tenant, store: context.store)
        guard !members.isEmpty else {
            throw PermanentError("\(type): community '\(community)' has no member supplies (PUT /api/v1/supplies/{cups} with \"community\")")
        }
        return members
    }
}

/// The interval a reading covers (its start and resolution), as the per-interval nodes group by.
struct ReadingInterval: Hashable {
    var ts: Date
    var resolution: String

    init(_ r: Reading) {
        ts = r.ts
        resolution = r.resolution
    }
}
