import Foundation

/// Sharing coefficients (coeficientes de reparto, β) of a collective self-consumption, in integer
/// micro-units (β · 10⁶), as distributors take them: six decimals, and every set (the static one,
/// or each hour's) summing to exactly 1,000000 (RD 244/2019 Anexo I, Orden TED/1247/2021).
public enum SharingCoefficients {
    public static let unit = 1_000_000

    /// Shares of `weights` (negative ones count as 0), in micro-units summing exactly to `unit`:
    /// each gets the floor of its exact share, and the micro-units left go one each to the largest
    /// remainders (ties: the earlier member). All weights 0: equal shares.
    public static func allocate(_ weights: [Double]) -> [Int] {
        guard !weights.isEmpty else { return [] }
        let w = weights.map { $0.isFinite ? max(0, $0) : 0 }
        let total = w.reduce(0, +)
        let exact = total > 0 ? w.map { $0 / total * Double(unit) } : w.map { _ in Double(unit) / Double(w.count) }
        var shares = exact.map { Int($0.rounded(.down)) }
        let left = unit - shares.reduce(0, +)
        let order = exact.indices.sorted { a, b in
            let ra = exact[a] - Double(shares[a]), rb = exact[b] - Double(shares[b])
            return ra != rb ? ra > rb : a < b
        }
        for i in 0..<left { shares[order[i % order.count]] += 1 }
        return shares
    }

    /// `0,500000`: six decimals and a decimal comma.
    public static func text(micro: Int) -> String {
        "\(micro / unit),\(String(format: "%06d", micro % unit))"
    }

    /// The ordinal hour of the year (1 = 00:00–01:00 on 1 January, local time) of the hour starting
    /// at `ts`: real elapsed hours, so a year has 8,760 (8,784) whatever its DST days.
    public static func hourOfYear(_ ts: Date, zone: TimeZone = LocalDay.madrid) -> (year: Int, hour: Int) {
        let year = LocalDay(containing: ts, in: zone).year
        let start = LocalDay(year: year, month: 1, day: 1).start(in: zone)
        return (year, Int((ts.timeIntervalSince(start) / 3600).rounded(.down)) + 1)
    }

    /// The start of ordinal hour `hour` of `year`.
    public static func hourStart(year: Int, hour: Int, zone: TimeZone = LocalDay.madrid) -> Date {
        LocalDay(year: year, month: 1, day: 1).start(in: zone).addingTimeInterval(Double(hour - 1) * 3600)
    }

    public static func hours(in year: Int) -> Int {
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
        return leap ? 8784 : 8760
    }
}

/// A coefficient file in the distributors' format (i-DE's, reference note §2.2): `CUPS;0,500000`
/// lines (static), or `CUPS;hour;0,200000` (hourly, ordered by CUPS then hour), `;`, LF, no header.
public struct CoefficientFile: Sendable, Equatable {
    public enum Kind: String, Sendable { case `static`, hourly }

    public var kind: Kind
    /// Static: one set; hourly: the hour of the year of each set, from 1.
    public var sets: [Int: [String: Int]]

    public init(kind: Kind, sets: [Int: [String: Int]]) {
        self.kind = kind
        self.sets = sets
    }

    public struct Problem: Error, CustomStringConvertible, Equatable {
        public var line: Int?
        public var message: String
        public var description: String { line.map { "line \($0): \(message)" } ?? message }
    }

    /// The file's text.
    public func text() -> String {
        var out = ""
        let members = Set(sets.values.flatMap(\.keys)).sorted()
        switch kind {
        case .static:
            for cups in members { out += "\(cups);\(SharingCoefficients.text(micro: sets[0]?[cups] ?? 0))\n" }
        case .hourly:
            let hours = sets.keys.sorted()
            for cups in members {
                for hour in hours { out += "\(cups);\(hour);\(SharingCoefficients.text(micro: sets[hour]?[cups] ?? 0))\n" }
            }
        }
        return out
    }

    /// `<CAU>_<YYYY>.txt`, the name distributors expect.
    public static func name(cau: String, year: Int) -> String { "\(cau)_\(year).txt" }

    /// Reads and checks a file (reference note §2.3): CUPS of 22 characters with valid check
    /// letters, values with a comma and exactly six decimals in 0...1, each CUPS (and hour) once,
    /// every set summing to exactly 1,000000 and, for an hourly file of `year`, every hour present.
    public static func parse(_ text: String, year: Int? = nil) throws(Problem) -> CoefficientFile {
        var kind: Kind?
        var sets: [Int: [String: Int]] = [:]
        for (index, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let line = index + 1
            if raw.isEmpty { continue }
            let fields = raw.split(separator: ";", omittingEmptySubsequences: false).map(String.init)
            let lineKind: Kind = fields.count == 2 ? .static : .hourly
            guard fields.count == 2 || fields.count == 3 else {
                throw Problem(line: line, message: "expected CUPS;coefficient or CUPS;hour;coefficient, found \(fields.count) fields")
            }
            if let kind, kind != lineKind { throw Problem(line: line, message: "mixes static and hourly lines") }
            kind = lineKind
            let cups = fields[0]
            guard cups.count == 22, CUPS.isValid(cups) else { throw Problem(line: line, message: "'\(cups)' is not a 22-character CUPS with valid check letters") }
            var hour = 0
            if lineKind == .hourly {
                guard let h = Int(fields[1]), h >= 1, h <= 8784 else { throw Problem(line: line, message: "hour '\(fields[1])' is not 1...8784") }
                hour = h
            }
            let value = fields[fields.count - 1]
            guard let micro = micro(value) else {
                throw Problem(line: line, message: "'\(value)' is not a coefficient with a decimal comma and six decimals between 0,000000 and 1,000000")
            }
            guard sets[hour]?[cups] == nil else {
                throw Problem(line: line, message: lineKind == .static ? "\(cups) appears twice" : "\(cups) hour \(hour) appears twice")
            }
            sets[hour, default: [:]][cups] = micro
        }
        guard let kind else { throw Problem(line: nil, message: "the file has no coefficients") }
        let file = CoefficientFile(kind: kind, sets: sets)
        try file.check(year: year)
        return file
    }

    /// Every set sums to exactly 1,000000; an hourly file has every hour of `year` for every CUPS.
    public func check(year: Int? = nil) throws(Problem) {
        for hour in sets.keys.sorted() {
            let sum = sets[hour]!.values.reduce(0, +)
            guard sum == SharingCoefficients.unit else {
                let what = kind == .static ? "the coefficients" : "hour \(hour)'s coefficients"
                throw Problem(line: nil, message: "\(what) sum to \(SharingCoefficients.text(micro: sum)), not exactly 1,000000")
            }
        }
        guard kind == .hourly else { return }
        let members = Set(sets.values.flatMap(\.keys))
        if let year {
            let expected = SharingCoefficients.hours(in: year)
            if let missing = (1...expected).first(where: { sets[$0] == nil }) {
                throw Problem(line: nil, message: "hour \(missing) of \(year) is missing (an hourly file has all \(expected))")
            }
            if let extra = sets.keys.first(where: { $0 > expected }) {
                throw Problem(line: nil, message: "hour \(extra) is past the end of \(year) (\(expected) hours)")
            }
        }
        for hour in sets.keys.sorted() where sets[hour]!.count != members.count {
            let absent = members.subtracting(sets[hour]!.keys).sorted().first ?? ""
            throw Problem(line: nil, message: "\(absent) has no coefficient for hour \(hour)")
        }
    }

    static func micro(_ text: String) -> Int? {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[1].count == 6, parts[0].count == 1, let whole = Int(parts[0]), let fraction = Int(parts[1]),
              parts[1].allSatisfy(\.isASCII), whole >= 0 else { return nil }
        let micro = whole * SharingCoefficients.unit + fraction
        return micro <= SharingCoefficients.unit ? micro : nil
    }
}

extension CoefficientFile {
    /// The file of stored `coefficient` readings: `P1Y` ones make a static file, `PT1H` ones an
    /// hourly one of their year (hours of the year in `zone`); 20-character CUPS get `borderPoint`.
    /// Checked as `parse` checks a file read.
    public init(readings: [Reading], borderPoint: String = "0F", zone: TimeZone = LocalDay.madrid) throws(Problem) {
        guard let first = readings.first else { throw Problem(line: nil, message: "there are no coefficient readings in the range asked") }
        let kind: Kind = first.resolution == "PT1H" ? .hourly : .static
        var sets: [Int: [String: Int]] = [:]
        var year: Int?
        for r in readings {
            guard (r.resolution == "PT1H") == (kind == .hourly) else {
                throw Problem(line: nil, message: "the range holds static (\(first.resolution)) and hourly coefficients: ask for one year of one kind")
            }
            var key = 0
            if kind == .hourly {
                let (y, hour) = SharingCoefficients.hourOfYear(r.ts, zone: zone)
                if let year, year != y { throw Problem(line: nil, message: "the range holds hourly coefficients of \(year) and \(y): a file is for one year") }
                year = y
                key = hour
            }
            let cups = CUPS.full(r.series, borderPoint: borderPoint)
            guard sets[key]?[cups] == nil else {
                throw Problem(line: nil, message: "\(r.series) has several static coefficients in the range asked: ask for one year")
            }
            sets[key, default: [:]][cups] = Int((r.value * Double(SharingCoefficients.unit)).rounded())
        }
        self.init(kind: kind, sets: sets)
        try check()
    }
}
