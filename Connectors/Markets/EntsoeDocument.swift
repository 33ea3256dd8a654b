import EnchufeCore
import Foundation
import HTTPPull

#if canImport(FoundationXML)
import FoundationXML
#endif

/// An answer of the ENTSO-E Transparency Platform, read with Foundation's XML parser (libxml2).
///
/// A `Publication_MarketDocument` holds TimeSeries (`businessType`, `curveType`,
/// `contract_MarketAgreement.type`, the domains), each with Periods (`timeInterval/start`, `end`,
/// `resolution`) of Points (`position` and `price.amount` or `quantity`). A point's interval
/// starts at start + (position − 1) × resolution; with curveType A03 a position left out repeats the
/// previous value (up to the period's end). An `Acknowledgement_MarketDocument`, which the platform
/// also sends with HTTP 200, is no data, with its reason. The layout is the platform's
/// implementation guide's, as the reference note on ENTSO-E sums it up (`docs/markets.md`).
public struct EntsoeDocument: Sendable, Equatable {
    public struct Point: Sendable, Equatable {
        public var ts: Date
        /// `PT15M`, `PT30M` or `PT1H` (the platform's `PT60M`).
        public var resolution: String
        public var value: Double
    }

    public struct Series: Sendable, Equatable {
        public var businessType: String?
        public var curveType: String?
        /// `A01` day-ahead, `A07` intraday (prices), and so on; nil when the answer does not say.
        public var contractType: String?
        public var inDomain: String?
        public var outDomain: String?
        public var points: [Point]
    }

    public var series: [Series]

    /// The day-ahead prices of a price answer (A44): the series of contract type A01 (or of no
    /// stated type), never the intraday ones (A07) the platform mixes into some zones' answers;
    /// where two series cover one interval, the first one's value.
    public var dayAheadPrices: [Point] {
        Self.merged(series.filter { $0.contractType == nil || $0.contractType == "A01" })
    }

    /// The points of `series` in time order, the first series' value where two cover one interval.
    public static func merged(_ series: [Series]) -> [Point] {
        var seen = Set<Date>()
        return series.flatMap(\.points).filter { seen.insert($0.ts).inserted }.sorted { $0.ts < $1.ts }
    }

    /// Reads an answer; an acknowledgement is `noData` with its reason, anything else not readable
    /// is `malformed`.
    public static func parse(_ bytes: [UInt8]) throws -> EntsoeDocument {
        let reader = Reader()
        let parser = XMLParser(data: Data(bytes))
        parser.delegate = reader
        guard parser.parse() else {
            let line = parser.lineNumber, column = parser.columnNumber
            throw PullError(.malformed, "the answer is not XML (line \(line), column \(column)): \(parser.parserError.map { "\($0)" } ?? "unknown error")")
        }
        if let problem = reader.problem { throw PullError(.malformed, problem) }
        // libxml2 in recovery can report success for a document cut short: its root must have ended.
        guard reader.complete else { throw PullError(.malformed, "the answer is not XML: it ends inside <\(reader.root ?? "")> (cut short?)") }
        switch reader.root {
        case "Acknowledgement_MarketDocument":
            let reason = reader.reasons.isEmpty ? "no reason given" : reader.reasons.joined(separator: "; ")
            throw PullError(.noData, "the platform has no data for this request: \(reason)")
        case "Publication_MarketDocument", "GL_MarketDocument", "TransmissionNetwork_MarketDocument":
            return EntsoeDocument(series: try reader.series.map { try $0.series() })
        default:
            throw PullError(.malformed, "an answer of type '\(reader.root ?? "none")', not a Publication_MarketDocument")
        }
    }

    /// The length of a resolution the platform writes (`PT15M`, `PT30M`, `PT60M`), with the name
    /// the hub stores.
    static func resolution(_ text: String) -> (seconds: Double, name: String)? {
        switch text {
        case "PT15M": (900, "PT15M")
        case "PT30M": (1800, "PT30M")
        case "PT60M", "PT1H": (3600, "PT1H")
        default: nil
        }
    }

    /// A TimeSeries as read, before its periods are expanded into points.
    struct RawSeries {
        var fields: [String: String] = [:]
        var periods: [RawPeriod] = []

        func series() throws -> Series {
            let curve = fields["curveType"]
            var points: [Point] = []
            for (i, period) in periods.enumerated() {
                points += try period.points(repeatingGaps: curve == "A03", index: i)
            }
            return Series(
                businessType: fields["businessType"], curveType: curve, contractType: fields["contract_MarketAgreement.type"],
                inDomain: fields["in_Domain.mRID"], outDomain: fields["out_Domain.mRID"], points: points)
        }
    }

    struct RawPeriod {
        var start: String?
        var end: String?
        var resolution: String?
        var points: [(position: Int, value: Double)] = []

        func points(repeatingGaps: Bool, index: Int) throws -> [Point] {
            guard let startText = start, let from = EntsoeDocument.instant(startText), let endText = end, let to = EntsoeDocument.instant(endText)
            else { throw PullError(.malformed, "Period \(index + 1) has no readable timeInterval (start '\(start ?? "")', end '\(end ?? "")')") }
            guard let resolutionText = resolution, let (step, name) = EntsoeDocument.resolution(resolutionText) else {
                throw PullError(.malformed, "Period \(index + 1) has resolution '\(resolution ?? "")', not PT15M, PT30M or PT60M")
            }
            let count = Int((to.timeIntervalSince(from) / step).rounded())
            guard count > 0, count <= 400 * 96 else { throw PullError(.malformed, "Period \(index + 1) runs from \(startText) to \(endText)") }
            var byPosition: [Int: Double] = [:]
            for point in points {
                guard (1...count).contains(point.position) else {
                    throw PullError(.malformed, "Period \(index + 1) has position \(point.position) outside 1...\(count)")
                }
                byPosition[point.position] = point.value
            }
            var result: [Point] = []
            var last: Double?
            for position in 1...count {
                let value = byPosition[position] ?? (repeatingGaps ? last : nil)
                guard let value else { continue }
                last = value
                result.append(Point(ts: from.addingTimeInterval(Double(position - 1) * step), resolution: name, value: value))
            }
            return result
        }
    }

    /// `2024-03-30T23:00Z` (the platform leaves out the seconds) or a full ISO-8601 instant.
    static func instant(_ text: String) -> Date? {
        let t = text.trimmingCharacters(in: .whitespaces)
        // yyyy-MM-ddTHH:mmZ: the seconds added before reading it.
        if t.count == 17, t.hasSuffix("Z") { return ISO8601.date(String(t.dropLast()) + ":00Z") }
        return ISO8601.date(t)
    }

    /// The parser's delegate: collects the root's name, the acknowledgement's reasons and the
    /// TimeSeries' fields, periods and points by the elements' local names.
    final class Reader: NSObject, XMLParserDelegate {
        var root: String?
        var reasons: [String] = []
        var series: [RawSeries] = []
        var problem: String?
        /// Whether the root element ended (the document is whole).
        var complete = false
        private var path: [String] = []
        private var text = ""
        private var current: RawSeries?
        private var period: RawPeriod?
        private var position: Int?
        private var value: Double?

        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
            let local = String(name.split(separator: ":").last ?? Substring(name))
            if root == nil { root = local }
            path.append(local)
            text = ""
            switch local {
            case "TimeSeries": current = RawSeries()
            case "Period": period = RawPeriod()
            case "Point": (position, value) = (nil, nil)
            default: break
            }
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }

        func parser(_ parser: XMLParser, parseErrorOccurred error: any Error) {
            problem = problem ?? "the answer is not XML (line \(parser.lineNumber), column \(parser.columnNumber)): \(error)"
        }

        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            let local = path.popLast() ?? name
            if path.isEmpty { complete = true }
            let content = text.trimmingCharacters(in: .whitespacesAndNewlines)
            text = ""
            let parent = path.last
            switch local {
            case "text" where parent == "Reason":
                if !content.isEmpty { reasons.append(content) }
            case "start" where parent == "timeInterval" && period != nil: period?.start = content
            case "end" where parent == "timeInterval" && period != nil: period?.end = content
            case "resolution" where period != nil: period?.resolution = content
            case "position" where parent == "Point": position = Int(content)
            case "price.amount", "quantity":
                guard parent == "Point" else { break }
                guard let number = Double(content), number.isFinite else {
                    problem = problem ?? "a Point's \(local) is '\(content.prefix(40))', not a number"
                    break
                }
                self.value = number
            case "Point":
                guard let position, let value else {
                    problem = problem ?? "a Point without a position or a value"
                    break
                }
                period?.points.append((position, value))
            case "Period":
                if let period { current?.periods.append(period) }
                period = nil
            case "TimeSeries":
                if let current { series.append(current) }
                current = nil
            default:
                // The TimeSeries' own fields (businessType, curveType, the domains...).
                if parent == "TimeSeries", current != nil { current?.fields[local] = content }
            }
        }
    }
}
