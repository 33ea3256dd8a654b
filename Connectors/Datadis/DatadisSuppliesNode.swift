import EnchufeCore
import Foundation
import HTTPPull

/// `datadis.supplies`: the account's supply points into the store's `supplies`.
struct DatadisSuppliesNode: TransformNode {
    static let spec = NodeSpec(
        type: "datadis.supplies", kind: .transform,
        summary: "Pulls the Datadis account's supply points (CUPS, distributor, point type, zone) into the store",
        doc: """
            Each message it receives is a trigger. Asks `get-supplies-v2` and saves each supply in the store's
            `supplies` (CUPS, distributor code, point type, zone from the postal code or province, validity;
            what other nodes added — tariff, powers, community — is kept). Several rows for one CUPS are
            resolved by validity (the open one, else the newest). Sends one message per supply
            (`{"cups", "distributor_code", "point_type", "zone", ...}`), which `datadis.contracts`,
            `datadis.consumption` and `datadis.max_power` take as "this supply". A distributor that fails inside
            the answer (`distributorError`) is a warning naming it, not a failure of the call.
            """,
        options: DatadisModule.options(extra: []),
        example: """
            - id: supplies
              type: datadis.supplies
              username: ${env:DATADIS_USER}
              password: ${env:DATADIS_PASSWORD}
              to: [consumption]
            """,
        carriesReadings: false,
        make: { build in .transform(try DatadisSuppliesNode(build)) })

    let client: DatadisClient
    let cups: [String]

    init(_ build: NodeBuildContext) throws {
        client = try DatadisModule.client(build, type: "datadis.supplies")
        cups = build.options[DatadisModule.cups] ?? []
    }

    func process(_ message: Message, _ context: NodeContext) async throws -> [Output] {
        let answer: (rows: [JSONValue], errors: [DistributorError])
        do {
            answer = try DatadisAnswer.rows(try await client.get(client.endpoint("get-supplies"), query: [], context: context), key: "supplies")
        } catch let error as PullError where error.kind == .noData {
            context.logger.notice("Datadis has no supplies for this account (\(error.message))")
            return []
        } catch let error as PullError {
            throw PermanentError("get-supplies: \(error)")
        }
        for e in answer.errors { context.logger.warning("get-supplies: \(e)") }
        var supplies = try DatadisAnswer.supplies(answer.rows, tenant: context.tenant)
        if !cups.isEmpty { supplies = supplies.filter { s in cups.contains { $0.prefix(20).uppercased() == s.cups.prefix(20) } } }
        var outputs: [Output] = []
        let stored = try await context.store.supplies(tenant: context.tenant)
        for supply in supplies {
            let saved = try await DatadisModule.save(supply, stored: stored, context: context)
            outputs.append(.out(message.derived(payload: DatadisModule.payload(saved), topic: saved.cups)))
        }
        context.logger.info("\(supplies.count) supply point(s) saved")
        return outputs
    }
}
