import EnchufeCore
import Foundation
import HTTPPull

/// A distributor that failed inside a 200 answer (`distributorError` of the v2 endpoints): a
/// partial failure, reported as a warning for that distributor, not a failure of the whole call.
public struct DistributorError: Sendable, Hashable, CustomStringConvertible {
    public var distributorCode: String
    public var distributorName: String
    public var errorCode: String
    public var errorDescription: String

    public var description: String { "distributor \(distributorCode) (\(distributorName)): \(errorDescription) [\(errorCode)]" }
}

/// Datadis answers: v1 endpoints answer a bare array, v2 ones an object with the rows under a key
/// that depends on the endpoint (`supplies`, `contract`, `timeCurve`, `maxPower`) and a
/// `distributorError` list. Both are accepted.
public enum DatadisAnswer {
    public static func rows(_ json: JSONValue, key: String) throws -> (rows: [JSONValue], errors: [DistributorError]) {
        if let array = json.arrayValue { return (array, []) }
        guard json.objectValue != nil else { throw PullError(.malformed, "a Datadis answer that is neither a list nor an object") }
        let errors = (json["distributorError"]?.arrayValue ?? []).map { e in
            DistributorError(
                distributorCode: e["distributorCode"]?.templateText ?? "", distributorName: e["distributorName"]?.templateText ?? "",
                errorCode: e["errorCode"]?.templateText ?? "", errorDescription: e["errorDescription"]?.templateText ?? "")
        }
        guard let value = json[key] else {
            if json["distributorError"] != nil { return ([], errors) }
            throw PullError(.malformed, "a Datadis answer without '\(key)'")
        }
        if value.isNull { return ([], errors) }
        guard let rows = value.arrayValue else { throw PullError(.malformed, "'\(key)' is not a list") }
        return (rows, errors)
    }

    /// A text field; `""`, `"-"` and null are nothing.
    static func text(_ json: JSONValue?) -> String? {
        guard let t = json?.templateText.trimmingCharacters(in: .whitespaces), !t.isEmpty, t != "-", json?.isNull == false else { return nil }
        return t
    }

    /// `2024/02/01` or `2024-02-01`.
    static func day(_ json: JSONValue?) -> LocalDay? {
        text(json).flatMap { LocalDay(written: $0) }
    }

    /// The zone of a supply from its postal code (or province): Baleares 07, Canarias 35/38, Ceuta
    /// 51, Melilla 52, else the peninsula.
    public static func zone(postalCode: String?, province: String?) -> String {
        let prefix = postalCode.map { String($0.prefix(2)) } ?? ""
        let name = (province ?? "").folding(options: [.caseInsensitive, .diacriticInsensitive], locale: nil)
        switch prefix {
        case "07": return "baleares"
        case "35", "38": return "canarias"
        case "51": return "ceuta"
        case "52": return "melilla"
        default:
            if name.contains("baleares") || name.contains("balears") { return "baleares" }
            if name.contains("palmas") || name.contains("tenerife") { return "canarias" }
            if name == "ceuta" { return "ceuta" }
            if name == "melilla" { return "melilla" }
            return "peninsula"
        }
    }

    public static func timeZone(zone: String) -> TimeZone {
        zone == "canarias" ? TimeZone(identifier: "Atlantic/Canary")! : LocalDay.madrid
    }

    /// The access tariff of a contract from its CNMC code (`2T`, `3T`, `61`...) or, failing that, its
    /// free-text access fare (`BAJA TENSION y POTENCIA <= 15 kW`).
    public static func tariff(codeFare: String?, accessFare: String?) -> String? {
        switch codeFare?.uppercased() {
        case "2T": return "2.0TD"
        case "3T": return "3.0TD"
        case "61": return "6.1TD"
        case "62": return "6.2TD"
        case "63": return "6.3TD"
        case "64": return "6.4TD"
        default: break
        }
        guard let fare = accessFare?.uppercased().replacingOccurrences(of: " ", with: "") else { return nil }
        if fare.contains("<=15") { return "2.0TD" }
        if fare.contains(">15") { return "3.0TD" }
        if fare.contains("ALTATENSION") || fare.contains("MEDIATENSION") { return "6.1TD" }
        return nil
    }

    // MARK: Supplies

    /// The supplies of an answer, one per CUPS: of several rows for one CUPS (successive contracts),
    /// the open one (empty `validDateTo`), else the newest `validDateFrom`.
    public static func supplies(_ rows: [JSONValue], tenant: String) throws -> [SupplyPoint] {
        var byCUPS: [String: (SupplyPoint, LocalDay?, Bool)] = [:]
        var order: [String] = []
        for (i, row) in rows.enumerated() {
            guard let cups = text(row["cups"])?.uppercased() else { throw PullError(.malformed, "supply \(i) has no cups") }
            guard let distributor = text(row["distributorCode"]) else { throw PullError(.malformed, "supply \(cups.prefix(10))… has no distributorCode") }
            let from = day(row["validDateFrom"]), to = day(row["validDateTo"])
            let postal = text(row["postalCode"]), province = text(row["province"])
            let supply = SupplyPoint(
                tenant: tenant, cups: cups, zone: zone(postalCode: postal, province: province), distributorCode: distributor,
                pointType: row["pointType"].flatMap { Int($0.templateText) }, validFrom: from?.description, validTo: to?.description, raw: row)
            let key = String(cups.prefix(20))
            let open = to == nil
            if let (_, knownFrom, knownOpen) = byCUPS[key] {
                let better = (open && !knownOpen) || (open == knownOpen && (from ?? LocalDay(year: 1, month: 1, day: 1)) > (knownFrom ?? LocalDay(year: 1, month: 1, day: 1)))
                if better { byCUPS[key] = (supply, from, open) }
            } else {
                byCUPS[key] = (supply, from, open)
                order.append(key)
            }
        }
        return order.map { byCUPS[$0]!.0 }
    }

    // MARK: Contracts

    /// The contract of a supply from a contract-detail answer: the open row (no `endDate`), else the
    /// newest; nil when every row is blank (a CUPS the account cannot see: "no contract", not data).
    /// The supply keeps its validity (the store keys supplies by it); the contract's dates are in `raw`.
    public static func contract(_ rows: [JSONValue], into supply: SupplyPoint) -> SupplyPoint? {
        let real = rows.filter { row in
            text(row["cups"]) != nil || text(row["startDate"]) != nil || !(row["contractedPowerkW"]?.arrayValue ?? []).isEmpty
        }
        guard !real.isEmpty else { return nil }
        let chosen = real.first { day($0["endDate"]) == nil } ?? real.max { (day($0["startDate"]) ?? LocalDay(year: 1, month: 1, day: 1)) < (day($1["startDate"]) ?? LocalDay(year: 1, month: 1, day: 1)) }!
        var s = supply
        s.tariff = tariff(codeFare: text(chosen["codeFare"]), accessFare: text(chosen["accessFare"] ?? chosen["accesFare"]))
        s.contractedPowerKW = chosen["contractedPowerkW"]?.arrayValue?.compactMap(\.doubleValue) ?? []
        if s.zone == nil || s.zone == "peninsula" {
            s.zone = zone(postalCode: text(chosen["postalCode"]), province: text(chosen["province"]))
        }
        var raw = s.raw?.objectValue ?? [:]
        raw["contract"] = chosen
        s.raw = .object(raw)
        return s
    }
}
