import EnchufeCore
import Foundation
import Logging
import Testing

@testable import Simulator

@Suite struct SupplyRegistrationTests {
    @Test func householdsBecomeSuppliesOfTheCommunityAndRegisteredOnesAreKept() async throws {
        let store = try SQLiteStore(path: ":memory:")
        try await store.migrate()
        let node = SimulateCommunityNode(NodeOptions(values: ["households": 4, "seed": 7, "community": "solar-roof"]))
        let households = node.model.households
        // One household is registered already, with its own tariff: it stays as it is.
        try await store.saveSupply(SupplyPoint(tenant: "demo", cups: households[0].cups, tariff: "3.0TD", community: "elsewhere"))
        let context = NodeContext(
            flow: "f", node: "households", tenant: "demo", store: store, clock: VirtualClock(start: Date()),
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }), metrics: HubMetrics())
        try await node.registerSupplies(of: "solar-roof", context)
        try await node.registerSupplies(of: "solar-roof", context)

        let supplies = try await store.supplies(tenant: "demo").sorted { $0.cups < $1.cups }
        #expect(supplies.map(\.cups) == households.map(\.cups).sorted())
        for supply in supplies {
            let household = households.first { $0.cups == supply.cups }!
            if supply.cups == households[0].cups {
                #expect(supply.tariff == "3.0TD" && supply.community == "elsewhere")
            } else {
                #expect(supply.tariff == "2.0TD" && supply.community == "solar-roof" && supply.zone == "peninsula")
                #expect(supply.contractedPowerKW == (household.pvKWp > 0 || household.hasEV ? [5.75, 5.75] : [4.6, 4.6]))
            }
        }
        #expect(try await store.supplies(tenant: "other").isEmpty)
    }
}
