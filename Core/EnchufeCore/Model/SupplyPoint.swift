import Foundation

/// A supply point (CUPS) of a tenant, for one validity period.
public struct SupplyPoint: Sendable, Hashable {
    public var tenant: String
    public var cups: String
    public var tariff: String?
    public var zone: String?
    public var distributorCode: String?
    public var pointType: Int?
    public var contractedPowerKW: [Double]
    public var coefficient: Double?
    public var community: String?
    /// Local dates (`YYYY-MM-DD`); nil: open.
    public var validFrom: String?
    public var validTo: String?
    /// The record as the source sent it.
    public var raw: JSONValue?
    /// The PV system behind the supply, for `forecast.solar` and the nMAE of its forecasts.
    public var pv: PVSystem?
    /// What the member bids and asks in the community's market (`community.market`, rule `priority`).
    public var market: MarketOrder?

    public init(
        tenant: String, cups: String, tariff: String? = nil, zone: String? = nil, distributorCode: String? = nil,
        pointType: Int? = nil, contractedPowerKW: [Double] = [], coefficient: Double? = nil, community: String? = nil,
        validFrom: String? = nil, validTo: String? = nil, raw: JSONValue? = nil, pv: PVSystem? = nil,
        market: MarketOrder? = nil
    ) {
        self.pv = pv
        self.market = market
        self.tenant = tenant
        self.cups = cups
        self.tariff = tariff
        self.zone = zone
        self.distributorCode = distributorCode
        self.pointType = pointType
        self.contractedPowerKW = contractedPowerKW
        self.coefficient = coefficient
        self.community = community
        self.validFrom = validFrom
        self.validTo = validTo
        self.raw = raw
    }
}

/// A member's standing order in the community market, EUR/kWh: the most it pays for a kWh from
/// another member (`bid`) and the least it sells its surplus for (`ask`); either may be absent
/// (any price).
public struct MarketOrder: Sendable, Hashable {
    public var bid: Double?
    public var ask: Double?

    public init(bid: Double? = nil, ask: Double? = nil) {
        self.bid = bid
        self.ask = ask
    }

    public struct Problem: Error, CustomStringConvertible { public var description: String }

    public init(json: JSONValue) throws {
        guard let fields = json.objectValue else { throw Problem(description: "market must be an object: {\"bid\": EUR/kWh, \"ask\": EUR/kWh}") }
        if let unknown = fields.keys.sorted().first(where: { !["bid", "ask"].contains($0) }) {
            throw Problem(description: "market: unknown field '\(unknown)' (fields: ask, bid)")
        }
        for name in ["bid", "ask"] {
            if let v = fields[name], !v.isNull {
                guard let n = v.doubleValue, n.isFinite, (-10...10).contains(n) else { throw Problem(description: "market.\(name) must be a price in EUR/kWh from -10 to 10") }
                if name == "bid" { bid = n } else { ask = n }
            }
        }
    }

    public var json: JSONValue {
        .object(["bid": bid.map(JSONValue.number) ?? .null, "ask": ask.map(JSONValue.number) ?? .null])
    }
}
