import EnchufeCore
import Foundation
import HTTPPull

/// `datadis.contracts`: tariff, contracted powers and self-consumption data of each supply.
struct DatadisContractsNode: TransformNode {
    static let spec = NodeSpec(
        type: "datadis.contracts", kind: .transform,
        summary: "Pulls each supply's contract (tariff, contracted powers) from Datadis into the store",
        doc: """
            For the supply a message carries (a `datadis.supplies` output) or, for any other trigger, every
            Datadis supply in the store: asks `get-contract-detail-v2` and saves the tariff (from the CNMC
            code `2T`/`3T`/`61`..., else from the access-fare text), the contracted powers (kW per period) and
            the contract record. An all-blank answer (a CUPS the account cannot see) means "no contract" and
            changes nothing. Passes the supply on, updated.
            """,
        options: DatadisModule.options(extra: []),
        example: """
            - id: contracts
              type: datadis.contracts
              username: ${env:DATADIS_USER}
              password: ${env:DATADIS_PASSWORD}
              to: [consumption]
            """,
        carriesReadings: false,
        make: { build in .transform(try DatadisContractsNode(build)) })

    let client: DatadisClient
    let cups: [String]

    init(_ build: NodeBuildContext) throws {
        client = try DatadisModule.client(build, type: "datadis.contracts")
        cups = build.options[DatadisModule.cups] ?? []
    }

    func process(_ message: Message, _ context: NodeContext) async throws -> [Output] {
        var outputs: [Output] = []
        var failures: [String] = []
        for supply in try await DatadisModule.supplies(for: message, cups: cups, context: context) {
            let query = [("cups", supply.cups), ("distributorCode", supply.distributorCode ?? "")]
            do {
                let answer = try DatadisAnswer.rows(try await client.get(client.endpoint("get-contract-detail"), query: query, context: context), key: "contract")
                for e in answer.errors { context.logger.warning("get-contract-detail \(DatadisModule.masked(supply.cups)): \(e)") }
                var updated = supply
                if let contract = DatadisAnswer.contract(answer.rows, into: supply) {
                    updated = try await DatadisModule.save(contract, context: context)
                } else {
                    context.logger.notice("\(DatadisModule.masked(supply.cups)): no contract visible to this account")
                }
                outputs.append(.out(message.derived(payload: DatadisModule.payload(updated), topic: updated.cups)))
            } catch let error as PullError {
                context.logger.warning("get-contract-detail \(DatadisModule.masked(supply.cups)): \(error)")
                failures.append("\(DatadisModule.masked(supply.cups)): \(error)")
                outputs.append(.out(message.derived(payload: DatadisModule.payload(supply), topic: supply.cups)))
            }
        }
        if outputs.isEmpty, let first = failures.first { throw PermanentError("get-contract-detail failed: \(first)") }
        return outputs
    }
}
