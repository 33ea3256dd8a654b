import EnchufeCore
import Foundation
import Testing

/// The recorded API answers in Fixtures/ (copied from ../shared/fixtures).
enum Fixtures {
    static func json(_ name: String) throws -> JSONValue {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: "json"))
        return try JSONValue.parse(String(decoding: try Data(contentsOf: url), as: UTF8.self))
    }

    static func text(_ name: String) throws -> String {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: "json"))
        return String(decoding: try Data(contentsOf: url), as: UTF8.self)
    }

    static func utc(_ text: String) -> Date { ISO8601.date(text)! }
}
