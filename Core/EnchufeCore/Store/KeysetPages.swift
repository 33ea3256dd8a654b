import Foundation
import NIOCore

extension ReadingStore {
    public func writeCSV(_ query: ReadingQuery, to write: (ByteBuffer) async throws -> Void) async throws {
        var writer = ExportWriter(.csv)
        for try await page in readingPages(query) { try await write(ByteBuffer(string: writer.rows(page))) }
    }

    /// The readings of `query` in pages of `pageSize` (keyset paging, so each page is one short
    /// query however large the export). The next page is fetched while the caller handles the
    /// current one, and no further: memory holds at most two pages, however slow the reader.
    public func readingPages(_ query: ReadingQuery, pageSize: Int = 5000) -> KeysetPages<[StoredReading]> {
        KeysetPages(query: query, pageSize: pageSize) { q in
            let page = try await self.readings(q)
            return (page, page.count, page.last.map { ReadingKey($0.reading) })
        }
    }

}

/// The pages of a reading query, fetched by keyset, one page ahead of the reader (see
/// `Store.readingPages`).
public struct KeysetPages<Page: Sendable>: AsyncSequence, Sendable {
    public typealias Element = Page
    public typealias Fetch = @Sendable (ReadingQuery) async throws -> (page: Page, count: Int, last: ReadingKey?)
    let query: ReadingQuery
    let pageSize: Int
    let fetch: Fetch

    public init(query: ReadingQuery, pageSize: Int, fetch: @escaping Fetch) {
        self.query = query
        self.pageSize = pageSize
        self.fetch = fetch
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var query: ReadingQuery
        let pageSize: Int
        let fetch: Fetch
        var pending: Task<(page: Page, count: Int, last: ReadingKey?), any Error>?
        var done = false

        public mutating func next() async throws -> Page? {
            guard !done else { return nil }
            let current = pending ?? Task { [query, fetch] in try await fetch(query) }
            let result = try await withTaskCancellationHandler {
                try await current.value
            } onCancel: {
                current.cancel()
            }
            pending = nil
            guard result.count == pageSize, let last = result.last else {
                done = true
                return result.count == 0 ? nil : result.page
            }
            query.after = last
            pending = Task { [query, fetch] in try await fetch(query) }
            return result.page
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        var q = query
        q.limit = pageSize
        return AsyncIterator(query: q, pageSize: pageSize, fetch: fetch)
    }
}
