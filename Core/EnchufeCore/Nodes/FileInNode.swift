import Foundation

/// `file.in`: a drop folder of data files, each read whole, moved to `done/` once committed or to
/// `failed/` with a `.error` file beside it.
struct FileInNode: SourceNode {
    enum Key {
        static let path = RequiredOptionKey<String>("path", doc: "The drop folder (created if missing).", example: "var/drop/curves")
        static let pattern = OptionKey<String>("pattern", default: "*", doc: "Which file names to read (`*` and `?` wildcards).", example: "*.csv")
        static let every = OptionKey<Duration>("every", default: .seconds(2), doc: "How often the folder is looked at.")
        static let maxSize = OptionKey<Int>("max_size", default: 104_857_600, doc: "Largest file read, in bytes; a larger one is moved to failed/ unread.")
    }

    static let spec = NodeSpec(
        type: "file.in", kind: .source,
        summary: "Reads files dropped in a folder (JSON, NDJSON, CSV, distributor and Datadis CSVs, F5D); done/ or failed/ after",
        doc: """
            Watches `path` every `every` for files matching `pattern`. A file is read only when complete:
            moved into the folder (rename) or with the same size and time at two looks in a row; names
            starting with `.` or ending in `.tmp`/`.part` are never read. The whole file is read first
            (the formats of `webhook.in`; `auto` by extension: `.json`, `.ndjson`/`.jsonl`, else CSV or a curve
            file recognised by its first line). Once everything from it is committed the file moves to
            `done/`; a file that cannot be read moves to `failed/` with `NAME.error` beside it saying
            why, and nothing of it is stored. A file whose messages were not committed (the hub stopping)
            stays and is read again.
            """,
        options: [
            Key.path.spec,
            Key.pattern.spec,
            Key.every.spec,
            Key.maxSize.spec,
        ] + BodyReader.optionSpecs,
        example: """
            - id: drop
              type: file.in
              path: var/drop/curves
              pattern: "*.csv"
              to: [store]
            """,
        check: { BodyReader.problems($0) },
        make: { build in .source(try FileInNode(build)) })

    let folder: URL
    let pattern: String
    let every: Duration
    let reader: BodyReader
    let maxSize: Int

    init(_ build: NodeBuildContext) throws {
        let o = build.options
        maxSize = o[Key.maxSize]
        folder = URL(fileURLWithPath: try o.required(Key.path))
        pattern = o[Key.pattern]
        every = o[Key.every]
        reader = try BodyReader(o)
    }

    func run(_ context: SourceContext) async throws {
        let fm = FileManager.default
        try fm.createDirectory(at: folder.appendingPathComponent("done"), withIntermediateDirectories: true)
        try fm.createDirectory(at: folder.appendingPathComponent("failed"), withIntermediateDirectories: true)
        context.logger.info("watching \(folder.path) for \(pattern)")
        var seen: [String: FileState] = [:]
        while !Task.isCancelled {
            var now: [String: FileState] = [:]
            for name in try Self.candidates(in: folder, pattern: pattern) {
                guard let state = FileState(folder.appendingPathComponent(name)) else { continue }
                now[name] = state
                // Complete: unchanged since the last look (a file moved in whole is unchanged too).
                guard seen[name] == state else { continue }
                try await process(name, context)
                now[name] = nil
            }
            seen = now
            try await context.clock.sleep(for: every)
        }
    }

    /// Reads one file whole, sends its messages, and moves it once they are committed.
    func process(_ name: String, _ context: SourceContext) async throws {
        let fm = FileManager.default
        let file = folder.appendingPathComponent(name)
        let messages: [Message]
        do {
            // Only regular files of the folder itself: a link could lead anywhere the hub may read.
            let attributes = try fm.attributesOfItem(atPath: file.path)
            guard attributes[.type] as? FileAttributeType == .typeRegular else {
                throw WebhookBodyError("not a regular file (a symbolic link or a device): only files put in the folder are read")
            }
            if let size = attributes[.size] as? Int, size > maxSize {
                throw WebhookBodyError("\(size) bytes; this folder takes files of at most \(maxSize) bytes (max_size)")
            }
            let bytes = [UInt8](try Data(contentsOf: file))
            messages = try reader.messages(bytes, contentType: Self.contentType(name), receivedAt: context.clock.now(), attributes: ["file": name])
        } catch {
            let reason = (error as? WebhookBodyError)?.description ?? "\(error)"
            context.logger.warning("\(name) cannot be read, moved to failed/: \(reason)")
            let failed = folder.appendingPathComponent("failed")
            try? fm.removeItem(at: failed.appendingPathComponent(name))
            try fm.moveItem(at: file, to: failed.appendingPathComponent(name))
            try Data("\(name): \(reason)\n".utf8).write(to: failed.appendingPathComponent(name + ".error"))
            return
        }
        let outcome = await (try await context.emit(messages)).outcome()
        guard outcome == .committed else {
            context.logger.warning("\(name) was not committed; it stays and is read again")
            return
        }
        let done = folder.appendingPathComponent("done")
        try? fm.removeItem(at: done.appendingPathComponent(name))
        try fm.moveItem(at: file, to: done.appendingPathComponent(name))
        context.logger.info("\(name): \(messages.count) message(s) committed, moved to done/")
    }

    /// The content type a file's extension suggests (`auto` then looks at the first line of CSVs).
    static func contentType(_ name: String) -> String {
        switch (name as NSString).pathExtension.lowercased() {
        case "json": return "application/json"
        case "ndjson", "jsonl": return "application/x-ndjson"
        default: return "text/csv"
        }
    }

    /// Regular files of the folder matching `pattern`, oldest name first; never hidden or partial ones.
    static func candidates(in folder: URL, pattern: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { name in
            guard !name.hasPrefix("."), !name.hasSuffix(".tmp"), !name.hasSuffix(".part"), name.range(of: pattern.wildcardRegex, options: .regularExpression) != nil else { return false }
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: folder.appendingPathComponent(name).path, isDirectory: &isDirectory) && !isDirectory.boolValue
        }.sorted()
    }
}

/// A file's size and modification time, to tell when it stopped changing.
struct FileState: Equatable {
    var size: Int
    var modified: Date

    init?(_ url: URL) {
        guard let a = try? FileManager.default.attributesOfItem(atPath: url.path), let size = a[.size] as? Int, let modified = a[.modificationDate] as? Date else { return nil }
        self.size = size
        self.modified = modified
    }
}

extension String {
    /// A `*`/`?` wildcard as an anchored regular expression.
    var wildcardRegex: String {
        "^" + NSRegularExpression.escapedPattern(for: self).replacingOccurrences(of: "\\*", with: ".*").replacingOccurrences(of: "\\?", with: ".") + "$"
    }
}
