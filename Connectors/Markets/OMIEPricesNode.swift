import EnchufeCore
import Foundation
import HTTPPull

/// `omie.prices`: OMIE's day-ahead marginal prices for Spain and Portugal, a day or a range.
struct OMIEPricesNode: TransformNode {
    static let spec = NodeSpec(
        type: "omie.prices", kind: .transform,
        summary: "Pulls OMIE's day-ahead marginal prices (Spain and Portugal) for a day or a date range",
        doc: """
            Each message it receives is a trigger (wire a `schedule` into it; OMIE publishes the next
            day's prices shortly after 13:00 Madrid time). For each day it downloads
            `marginalpdbc_YYYYMMDD.1` from `{base_url}/es/file-download` (Latin-1 text, no key) and
            stores series `omie:ES` and `omie:PT`, quantity `price`, in EUR/MWh, placed by period from
            00:00 Madrid time: hourly until 2025-09-30 (23, 24 or 25 periods), quarter-hourly from
            2025-10-01 (92, 96 or 100). A file not there yet (a 404, or the HTML page OMIE answers
            with) is "not published yet": nothing is stored, nothing is dead-lettered, and the next
            trigger asks again. A day that was read whole is recorded once committed and not asked again.
            """,
        options: PullNodeOptions.omie.specs,
        example: """
            - id: omie
              type: omie.prices
              day: tomorrow
              to: [store]
            """,
        check: { DayWindow.problems($0) },
        make: { build in .transform(try OMIEPricesNode(build)) })

    let client: PullClient
    let base: String
    let window: DayWindow
    let maxRequests: Int

    init(_ build: NodeBuildContext) throws {
        let o = build.options
        client = PullNodeOptions.omie.client(build, type: "omie.prices")
        base = PullNodeOptions.omie.base(o)
        window = DayWindow(options: o)
        maxRequests = o[PullNodeOptions.omie.maxRequests]
    }

    func url(_ day: LocalDay) throws -> URL {
        try PullNodeOptions.url(base, "/es/file-download", query: [("parents", "marginalpdbc"), ("filename", OMIEFile.name(day))])
    }

    func process(_ message: Message, _ context: NodeContext) async throws -> [Output] {
        let days = try window.overridden(by: message.payload).days(today: LocalDay(containing: context.clock.now()))
        return try await PullRun.each(days, context: context, maxRequests: maxRequests, period: { "omie.prices/\($0)" }) { day in
            (try await fetch(day, context), complete: true)
        }
    }

    /// One day's prices; `noData` while the file is not published.
    func fetch(_ day: LocalDay, _ context: NodeContext) async throws -> [Reading] {
        let notYet = PullError(.noData, "\(OMIEFile.name(day)) is not published yet")
        let response: PullResponse
        do {
            response = try await client.get(try url(day), context: context)
        } catch let error as PullError where error.status == 404 {
            throw notYet
        }
        guard !response.isHTML, let text = response.text, !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            if response.text == nil { throw PullError(.malformed, status: response.status, "the body is not text (\(response.bytes.count) bytes)") }
            throw notYet
        }
        return try OMIEFile.readings(text, day: day)
    }
}
