import Foundation

/// A community market's statement over a period: per member the sums of what `community.market`
/// stored (bought, sold, value, grid import and export, savings) and the community's total. Served
/// by `GET /api/v1/communities/{id}/settlement` and written by the `settlement` export format.
public struct Settlement: Sendable {
    public struct Row: Sendable, Equatable {
        public var cups: String
        public var bought = 0.0
        public var sold = 0.0
        public var value = 0.0
        public var gridImport = 0.0
        public var gridExport = 0.0
        /// Nil when no interval had both prices to weigh the savings by.
        public var savings: Double?
        /// How many intervals were cleared for it.
        public var intervals = 0

        public init(cups: String) { self.cups = cups }
    }

    /// The quantities `community.market` writes per member, which a statement sums.
    public static let quantities = ["market_bought", "market_sold", "market_value", "market_grid_import", "market_grid_export", "market_savings"]

    public private(set) var rows: [String: Row] = [:]

    public init(members: [String] = []) {
        for m in members { rows[m] = Row(cups: m) }
    }

    public mutating func add(_ r: Reading) {
        guard Self.quantities.contains(r.quantity), !r.series.hasPrefix("community:"), r.quality != .forecast else { return }
        var row = rows[r.series] ?? Row(cups: r.series)
        switch r.quantity {
        case "market_bought":
            row.bought += r.value
            row.intervals += 1
        case "market_sold": row.sold += r.value
        case "market_value": row.value += r.value
        case "market_grid_import": row.gridImport += r.value
        case "market_grid_export": row.gridExport += r.value
        default: row.savings = (row.savings ?? 0) + r.value
        }
        rows[r.series] = row
    }

    public var members: [Row] { rows.values.sorted { $0.cups < $1.cups } }

    public var total: Row {
        var t = Row(cups: "total")
        for r in rows.values {
            t.bought += r.bought
            t.sold += r.sold
            t.value += r.value
            t.gridImport += r.gridImport
            t.gridExport += r.gridExport
            if let s = r.savings { t.savings = (t.savings ?? 0) + s }
            t.intervals = max(t.intervals, r.intervals)
        }
        return t
    }

    /// A local month `YYYY-MM` as the instants it spans.
    public static func month(_ text: String, zone: TimeZone = LocalDay.madrid) -> (from: Date, to: Date)? {
        let parts = text.split(separator: "-")
        guard parts.count == 2, parts[0].count == 4, parts[1].count == 2, let y = Int(parts[0]), let m = Int(parts[1]), (2000...2100).contains(y), (1...12).contains(m)
        else { return nil }
        let first = LocalDay(year: y, month: m, day: 1)
        let next = m == 12 ? LocalDay(year: y + 1, month: 1, day: 1) : LocalDay(year: y, month: m + 1, day: 1)
        return (first.start(in: zone), next.start(in: zone))
    }

    static func rounded(_ v: Double, _ places: Int) -> Double {
        let f = pow(10, Double(places))
        return (v * f).rounded() / f
    }

    static func json(_ r: Row) -> JSONValue {
        [
            "cups": .string(r.cups), "bought_kwh": .number(rounded(r.bought, 6)), "sold_kwh": .number(rounded(r.sold, 6)),
            "value_eur": .number(rounded(r.value, 6)), "grid_import_kwh": .number(rounded(r.gridImport, 6)),
            "grid_export_kwh": .number(rounded(r.gridExport, 6)), "savings_eur": r.savings.map { .number(rounded($0, 6)) } ?? .null,
            "intervals": .number(Double(r.intervals)),
        ]
    }

    public func json(community: String, from: Date, to: Date) -> JSONValue {
        [
            "community": .string(community), "from": .string(ISO8601.string(from)), "to": .string(ISO8601.string(to)),
            "members": .array(members.map(Self.json)), "total": Self.json(total),
        ]
    }

    public static let csvHeader = "cups;bought_kWh;sold_kWh;value_EUR;grid_import_kWh;grid_export_kWh;savings_EUR\n"

    /// The statement as CSV (`;`, decimal point, six decimals): the header, one row per member, then `total`.
    public var csv: String { Self.csvHeader + csvRows }

    /// The CSV's rows without the header.
    public var csvRows: String {
        func line(_ r: Row) -> String {
            let numbers = [r.bought, r.sold, r.value, r.gridImport, r.gridExport].map { String(format: "%.6f", $0) }
            return ([ExportWriter.csvField(r.cups)] + numbers + [r.savings.map { String(format: "%.6f", $0) } ?? ""]).joined(separator: ";") + "\n"
        }
        return members.map(line).joined() + line(total)
    }

    /// The statement of a community's members over [from, to), from the store.
    public static func statement(_ members: CommunityMembers, tenant: String, from: Date, to: Date, store: any Store) async throws -> Settlement {
        var settlement = Settlement(members: members.cups)
        guard !members.isEmpty else { return settlement }
        for quantity in quantities {
            for try await page in store.readingPages(ReadingQuery(tenant: tenant, series: members.cups, quantity: quantity, from: from, to: to)) {
                for s in page { settlement.add(s.reading) }
            }
        }
        return settlement
    }
}
