import EnchufeCore
import Foundation
import HTTPPull
@testable import Markets
import Testing

/// ENTSO-E answers made in the platform's layout (`Publication_MarketDocument`, namespace
/// 7:3), with the pitfalls the clients' issue trackers report: gaps in A03 curves, PT15M and PT60M
/// in one answer, intraday series mixed into day-ahead prices, acknowledgements with HTTP 200.
@Suite struct EntsoeDocumentTests {
    struct SeriesXML {
        var contract = "A01"
        var curve = "A03"
        var start = "2024-06-01T22:00Z"
        var end = "2024-06-02T22:00Z"
        var resolution = "PT15M"
        var points: [(Int, Double)]
        var valueName = "price.amount"

        var xml: String {
            """
              <TimeSeries>
                <mRID>1</mRID>
                <businessType>A62</businessType>
                <contract_MarketAgreement.type>\(contract)</contract_MarketAgreement.type>
                <in_Domain.mRID codingScheme="A01">10YES-REE------0</in_Domain.mRID>
                <out_Domain.mRID codingScheme="A01">10YES-REE------0</out_Domain.mRID>
                <currency_Unit.name>EUR</currency_Unit.name>
                <price_Measure_Unit.name>MWH</price_Measure_Unit.name>
                <curveType>\(curve)</curveType>
                <Period>
                  <timeInterval><start>\(start)</start><end>\(end)</end></timeInterval>
                  <resolution>\(resolution)</resolution>
            \(points.map { "      <Point><position>\($0.0)</position><\(valueName)>\($0.1)</\(valueName)></Point>" }.joined(separator: "\n"))
                </Period>
              </TimeSeries>
            """
        }
    }

    static func publication(_ series: [SeriesXML]) -> [UInt8] {
        Array("""
            <?xml version="1.0" encoding="utf-8"?>
            <Publication_MarketDocument xmlns="urn:iec62325.351:tc57wg16:451-3:publicationdocument:7:3">
              <mRID>doc</mRID>
              <type>A44</type>
              <period.timeInterval><start>2024-06-01T22:00Z</start><end>2024-06-02T22:00Z</end></period.timeInterval>
            \(series.map(\.xml).joined(separator: "\n"))
            </Publication_MarketDocument>
            """.utf8)
    }

    static func utc(_ text: String) -> Date { ISO8601.date(text)! }

    @Test func anA03CurveRepeatsThePreviousValueWhereAPositionIsLeftOut() throws {
        let doc = try EntsoeDocument.parse(Self.publication([SeriesXML(points: [(1, 10), (2, 20.5), (5, -1.25), (96, 7)])]))
        let points = try #require(doc.series.first).points
        #expect(points.count == 96)
        #expect(points.map(\.value).prefix(6) == [10, 20.5, 20.5, 20.5, -1.25, -1.25])
        #expect(points[94].value == -1.25 && points[95].value == 7)
        #expect(points[0].ts == Self.utc("2024-06-01T22:00:00Z") && points[95].ts == Self.utc("2024-06-02T21:45:00Z"))
        #expect(points.allSatisfy { $0.resolution == "PT15M" })
    }

    @Test func anA01CurveHasOnlyThePointsGivenAndPT60MIsStoredAsPT1H() throws {
        let given = (1...24).filter { $0 != 3 }.map { ($0, Double($0)) }
        let doc = try EntsoeDocument.parse(Self.publication([SeriesXML(curve: "A01", resolution: "PT60M", points: given)]))
        let points = try #require(doc.series.first).points
        #expect(points.count == 23)
        #expect(points[2].ts == Self.utc("2024-06-02T01:00:00Z") && points[2].value == 4)
        #expect(points.allSatisfy { $0.resolution == "PT1H" })
    }

    @Test func pt15mAndPT60MInOneAnswerAreEachPlacedByTheirOwnResolution() throws {
        let doc = try EntsoeDocument.parse(Self.publication([
            SeriesXML(end: "2024-06-02T10:00Z", resolution: "PT60M", points: (1...12).map { ($0, 50) }),
            SeriesXML(start: "2024-06-02T10:00Z", points: (1...48).map { ($0, 60) }),
        ]))
        let prices = doc.dayAheadPrices
        #expect(prices.count == 12 + 48)
        #expect(prices[11].ts == Self.utc("2024-06-02T09:00:00Z") && prices[11].resolution == "PT1H")
        #expect(prices[12].ts == Self.utc("2024-06-02T10:00:00Z") && prices[12].resolution == "PT15M")
        #expect(prices.last?.ts == Self.utc("2024-06-02T21:45:00Z"))
    }

    @Test func intradaySeriesMixedIntoAPriceAnswerAreLeftOutOfTheDayAheadPrices() throws {
        let doc = try EntsoeDocument.parse(Self.publication([
            SeriesXML(contract: "A07", points: (1...96).map { ($0, 999) }),
            SeriesXML(points: (1...96).map { ($0, Double($0)) }),
        ]))
        #expect(doc.series.count == 2)
        #expect(doc.dayAheadPrices.count == 96)
        #expect(!doc.dayAheadPrices.contains { $0.value == 999 })
    }

    @Test func quantitiesAndTheDomainsAreRead() throws {
        let doc = try EntsoeDocument.parse(Self.publication([SeriesXML(resolution: "PT60M", points: [(1, 2800), (24, 3100)], valueName: "quantity")]))
        let series = try #require(doc.series.first)
        #expect(series.points.count == 24 && series.points.last?.value == 3100)
        #expect(series.inDomain == "10YES-REE------0" && series.curveType == "A03" && series.businessType == "A62")
    }

    @Test func anAcknowledgementIsNoDataWithItsReason() {
        let ack = Array("""
            <?xml version="1.0" encoding="UTF-8"?>
            <Acknowledgement_MarketDocument xmlns="urn:iec62325.351:tc57wg16:451-1:acknowledgementdocument:7:0">
              <mRID>x</mRID>
              <Reason>
                <code>999</code>
                <text>No matching data found for Data item Day-ahead Prices [12.1.D] (10YES-REE------0).</text>
              </Reason>
            </Acknowledgement_MarketDocument>
            """.utf8)
        #expect { try EntsoeDocument.parse(ack) } throws: { error in
            guard let error = error as? PullError else { return false }
            return error.kind == .noData && error.message.contains("No matching data found for Data item Day-ahead Prices")
        }
    }

    @Test(arguments: [
        ("<html><body>Service unavailable</body></html>", "an answer of type 'html'"),
        ("<html><body>Service unavailable", "not XML"),
        ("{\"error\": 1}", "not XML"),
        ("<Other_Document/>", "an answer of type 'Other_Document'"),
        ("<Publication_MarketDocument><TimeSeries><Period>", "not XML"),
    ])
    func whatIsNotAPublicationIsMalformedSayingWhat(body: String, message: String) {
        #expect { try EntsoeDocument.parse(Array(body.utf8)) } throws: { error in
            guard let error = error as? PullError else { return false }
            return error.kind == .malformed && error.message.contains(message)
        }
    }

    @Test func aPointOutsideItsPeriodOrWithoutANumberIsMalformed() {
        for series in [SeriesXML(points: [(1, 1), (97, 2)]), SeriesXML(resolution: "P1D", points: [(1, 1)])] {
            #expect { try EntsoeDocument.parse(Self.publication([series])) } throws: { error in
                (error as? PullError)?.kind == .malformed
            }
        }
        let notANumber = String(decoding: Self.publication([SeriesXML(points: [(1, 1)])]), as: UTF8.self)
            .replacingOccurrences(of: "<price.amount>1.0</price.amount>", with: "<price.amount>n/a</price.amount>")
        #expect { try EntsoeDocument.parse(Array(notANumber.utf8)) } throws: { error in
            (error as? PullError).map { $0.kind == .malformed && $0.message.contains("'n/a', not a number") } ?? false
        }
    }
}
