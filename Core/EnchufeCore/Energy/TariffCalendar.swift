import Foundation

/// The five electric zones of Spain, each billed in its own local time.
public enum TariffZone: String, Sendable, CaseIterable {
    case peninsula, baleares, canarias, ceuta, melilla

    public var timeZone: TimeZone {
        switch self {
        case .peninsula, .baleares: LocalDay.madrid
        case .canarias: TimeZone(identifier: "Atlantic/Canary")!
        case .ceuta, .melilla: TimeZone(identifier: "Africa/Ceuta")!
        }
    }

    /// Reads `peninsula`, `Península`, `PENINSULA`, `canarias`, `Canary Islands`...
    public init?(named name: String) {
        let folded = name.folding(options: [.diacriticInsensitive, .caseInsensitive], locale: nil).lowercased()
        if let zone = TariffZone(rawValue: folded) {
            self = zone
        } else if folded.hasPrefix("canar") {
            self = .canarias
        } else if folded.hasPrefix("balear") {
            self = .baleares
        } else {
            return nil
        }
    }
}

/// The access-tariff periods of Circular CNMC 3/2020 for 2.0TD (three energy periods, two power
/// periods) and the six-period tariffs (3.0TD, 6.1TD–6.4TD and their `VE` variants): which
/// period an hour belongs to, by zone, season (month), day type and local hour.
///
/// The tables are data (`TariffCalendar.tables`), read once: an hour row per zone and day kind, and
/// the all-valley dates — Saturdays, Sundays and the fixed-date national holidays (1 and 6 January,
/// 1 May, 15 August, 12 October, 1 November, 6, 8 and 25 December; Good Friday, having no fixed
/// date, is not one). They hold for any year; `extraHolidays` adds dates for a change of rule.
public struct TariffCalendar: Sendable {
    public enum Tariff: Sendable, Equatable {
        /// 2.0TD: energy P1–P3, power P1–P2.
        case twoPeriods
        /// 3.0TD, 6.xTD: six periods, the same for energy and power.
        case sixPeriods

        /// `2.0TD`, `3.0TD`, `6.1TD`...`6.4TD`, `3.0TDVE`, `6.1TDVE`, `6.2TDVE`.
        public init?(_ name: String) {
            let n = name.uppercased().replacingOccurrences(of: " ", with: "")
            if n == "2.0TD" {
                self = .twoPeriods
            } else if ["3.0TD", "6.1TD", "6.2TD", "6.3TD", "6.4TD", "3.0TDVE", "6.1TDVE", "6.2TDVE"].contains(n) {
                self = .sixPeriods
            } else {
                return nil
            }
        }
    }

    /// An hour's periods.
    public struct Periods: Sendable, Equatable {
        public var energy: String
        public var power: String
    }

    private var allValleyDates: Set<MonthDay>
    private var extraDates: Set<LocalDay> = []
    /// 2.0TD: zone → (energy, power) by hour of a working day.
    private let twoPeriodRows: [TariffZone: (energy: [String], power: [String])]
    /// Six periods: zone → month → periods by hour of a working day.
    private let sixPeriodRows: [TariffZone: [Int: [String]]]

    struct MonthDay: Hashable, Sendable {
        var month: Int
        var day: Int
    }

    /// The calendar of Circular 3/2020, plus any extra all-valley dates.
    public init(extraHolidays: [LocalDay] = []) {
        self = Self.standard
        extraDates = Set(extraHolidays)
    }

    private init(allValleyDates: Set<MonthDay>, twoPeriodRows: [TariffZone: (energy: [String], power: [String])], sixPeriodRows: [TariffZone: [Int: [String]]]) {
        self.allValleyDates = allValleyDates
        self.twoPeriodRows = twoPeriodRows
        self.sixPeriodRows = sixPeriodRows
    }

    /// Whether every hour of the day is valley (P3 / P6): a weekend, a fixed national holiday or
    /// an extra date.
    public func isAllValley(_ day: LocalDay) -> Bool {
        if allValleyDates.contains(MonthDay(month: day.month, day: day.day)) || extraDates.contains(day) { return true }
        let weekday = LocalDay.calendar(.gmt).component(.weekday, from: day.start(in: .gmt))
        return weekday == 1 || weekday == 7
    }

    /// The periods of the interval that starts at `start`, in the zone's local time.
    public func periods(_ tariff: Tariff, zone: TariffZone, at start: Date) -> Periods {
        let local = LocalDay.calendar(zone.timeZone).dateComponents([.year, .month, .day, .hour], from: start)
        let day = LocalDay(year: local.year!, month: local.month!, day: local.day!)
        let hour = local.hour!
        let valley = isAllValley(day)
        switch tariff {
        case .twoPeriods:
            if valley { return Periods(energy: "P3", power: "P2") }
            let rows = twoPeriodRows[zone]!
            return Periods(energy: rows.energy[hour], power: rows.power[hour])
        case .sixPeriods:
            let period = valley ? "P6" : sixPeriodRows[zone]![day.month]![hour]
            return Periods(energy: period, power: period)
        }
    }

    /// The period names of a tariff, in order.
    public static func energyPeriods(_ tariff: Tariff) -> [String] {
        tariff == .twoPeriods ? ["P1", "P2", "P3"] : ["P1", "P2", "P3", "P4", "P5", "P6"]
    }

    // MARK: The tables

    /// Circular CNMC 3/2020. `holiday` lines are the fixed-date all-valley days (MM-DD);
    /// `2.0TD` lines give a working day's 24 hours for the zones named; `6P` lines give a working
    /// day's 24 hours for a zone in the months named (its season).
    static let tables = """
        holiday 01-01 Año Nuevo
        holiday 01-06 Epifanía
        holiday 05-01 Fiesta del Trabajo
        holiday 08-15 Asunción
        holiday 10-12 Fiesta Nacional
        holiday 11-01 Todos los Santos
        holiday 12-06 Constitución
        holiday 12-08 Inmaculada Concepción
        holiday 12-25 Navidad
        2.0TD energy peninsula,baleares,canarias P3 P3 P3 P3 P3 P3 P3 P3 P2 P2 P1 P1 P1 P1 P2 P2 P2 P2 P1 P1 P1 P1 P2 P2
        2.0TD power  peninsula,baleares,canarias P2 P2 P2 P2 P2 P2 P2 P2 P1 P1 P1 P1 P1 P1 P1 P1 P1 P1 P1 P1 P1 P1 P1 P1
        2.0TD energy ceuta,melilla               P3 P3 P3 P3 P3 P3 P3 P3 P2 P2 P2 P1 P1 P1 P1 P2 P2 P2 P2 P1 P1 P1 P1 P2
        2.0TD power  ceuta,melilla               P2 P2 P2 P2 P2 P2 P2 P2 P1 P1 P1 P1 P1 P1 P1 P1 P1 P1 P1 P1 P1 P1 P1 P1
        6P peninsula 1,2,7,12  P6 P6 P6 P6 P6 P6 P6 P6 P2 P1 P1 P1 P1 P1 P2 P2 P2 P2 P1 P1 P1 P1 P2 P2
        6P peninsula 3,11      P6 P6 P6 P6 P6 P6 P6 P6 P3 P2 P2 P2 P2 P2 P3 P3 P3 P3 P2 P2 P2 P2 P3 P3
        6P peninsula 6,8,9     P6 P6 P6 P6 P6 P6 P6 P6 P4 P3 P3 P3 P3 P3 P4 P4 P4 P4 P3 P3 P3 P3 P4 P4
        6P peninsula 4,5,10    P6 P6 P6 P6 P6 P6 P6 P6 P5 P4 P4 P4 P4 P4 P5 P5 P5 P5 P4 P4 P4 P4 P5 P5
        6P baleares 6,7,8,9    P6 P6 P6 P6 P6 P6 P6 P6 P2 P2 P1 P1 P1 P1 P1 P2 P2 P2 P1 P1 P1 P1 P2 P2
        6P baleares 5,10       P6 P6 P6 P6 P6 P6 P6 P6 P3 P3 P2 P2 P2 P2 P2 P3 P3 P3 P2 P2 P2 P2 P3 P3
        6P baleares 1,2,12     P6 P6 P6 P6 P6 P6 P6 P6 P4 P4 P3 P3 P3 P3 P3 P4 P4 P4 P3 P3 P3 P3 P4 P4
        6P baleares 3,4,11     P6 P6 P6 P6 P6 P6 P6 P6 P5 P5 P4 P4 P4 P4 P4 P5 P5 P5 P4 P4 P4 P4 P5 P5
        6P canarias 7,8,9,10   P6 P6 P6 P6 P6 P6 P6 P6 P3 P3 P1 P1 P1 P1 P1 P3 P3 P3 P1 P1 P1 P1 P3 P3
        6P canarias 11,12      P6 P6 P6 P6 P6 P6 P6 P6 P3 P3 P2 P2 P2 P2 P2 P3 P3 P3 P2 P2 P2 P2 P3 P3
        6P canarias 1,2,3      P6 P6 P6 P6 P6 P6 P6 P6 P4 P4 P2 P2 P2 P2 P2 P4 P4 P4 P2 P2 P2 P2 P4 P4
        6P canarias 4,5,6      P6 P6 P6 P6 P6 P6 P6 P6 P5 P5 P4 P4 P4 P4 P4 P5 P5 P5 P4 P4 P4 P4 P5 P5
        6P ceuta 1,2,8,9       P6 P6 P6 P6 P6 P6 P6 P6 P4 P4 P1 P1 P1 P1 P1 P4 P4 P4 P4 P1 P1 P1 P1 P4
        6P ceuta 7,10          P6 P6 P6 P6 P6 P6 P6 P6 P3 P3 P2 P2 P2 P2 P2 P3 P3 P3 P3 P2 P2 P2 P2 P3
        6P ceuta 3,11,12       P6 P6 P6 P6 P6 P6 P6 P6 P4 P4 P2 P2 P2 P2 P2 P4 P4 P4 P4 P2 P2 P2 P2 P4
        6P ceuta 4,5,6         P6 P6 P6 P6 P6 P6 P6 P6 P5 P5 P3 P3 P3 P3 P3 P5 P5 P5 P5 P3 P3 P3 P3 P5
        6P melilla 1,7,8,9     P6 P6 P6 P6 P6 P6 P6 P6 P2 P2 P1 P1 P1 P1 P1 P2 P2 P2 P2 P1 P1 P1 P1 P2
        6P melilla 2,12        P6 P6 P6 P6 P6 P6 P6 P6 P3 P3 P2 P2 P2 P2 P2 P3 P3 P3 P3 P2 P2 P2 P2 P3
        6P melilla 6,10,11     P6 P6 P6 P6 P6 P6 P6 P6 P4 P4 P3 P3 P3 P3 P3 P4 P4 P4 P4 P3 P3 P3 P3 P4
        6P melilla 3,4,5       P6 P6 P6 P6 P6 P6 P6 P6 P5 P5 P4 P4 P4 P4 P4 P5 P5 P5 P5 P4 P4 P4 P4 P5
        """

    /// The tables read into lookups. A table that does not cover every zone, month and hour is a
    /// programming error caught by the first use (and the tests).
    static let standard: TariffCalendar = {
        var holidays: Set<MonthDay> = []
        var two: [TariffZone: (energy: [String], power: [String])] = [:]
        var six: [TariffZone: [Int: [String]]] = [:]
        for line in tables.split(separator: "\n") {
            let f = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            switch f[0] {
            case "holiday":
                let md = f[1].split(separator: "-").compactMap { Int($0) }
                holidays.insert(MonthDay(month: md[0], day: md[1]))
            case "2.0TD":
                let hours = Array(f[3...])
                for zone in f[2].split(separator: ",").compactMap({ TariffZone(rawValue: String($0)) }) {
                    var rows = two[zone] ?? (energy: [], power: [])
                    if f[1] == "energy" { rows.energy = hours } else { rows.power = hours }
                    two[zone] = rows
                }
            default:
                let zone = TariffZone(rawValue: f[1])!
                for month in f[2].split(separator: ",").compactMap({ Int($0) }) { six[zone, default: [:]][month] = Array(f[3...]) }
            }
        }
        precondition(TariffZone.allCases.allSatisfy { z in
            two[z].map { $0.energy.count == 24 && $0.power.count == 24 } == true
                && (1...12).allSatisfy { six[z]?[$0]?.count == 24 }
        }, "the tariff tables must give 24 hours for every zone and month")
        return TariffCalendar(allValleyDates: holidays, twoPeriodRows: two, sixPeriodRows: six)
    }()
}
