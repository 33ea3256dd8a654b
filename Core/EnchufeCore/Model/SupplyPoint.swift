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

    public init(
        tenant: String, cups: String, tariff: String? = nil, zone: String? = nil, distributorCode: String? = nil,
        pointType: Int? = nil, contractedPowerKW: [Double] = [], coefficient: Double? = nil, community: String? = nil,
        validFrom: String? = nil, validTo: String? = nil, raw: JSONValue? = nil, pv: PVSystem? = nil
    ) {
        self.pv = pv
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
