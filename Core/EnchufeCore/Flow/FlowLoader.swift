import Foundation
import Yams

/// What loading some flow files produced: the valid flows and every problem found.
public struct FlowSet: Sendable {
    public var flows: [FlowDefinition]
    public var diagnostics: [Diagnostic]
    /// Files that had errors, so their flows are not run.
    public var invalidFiles: [String]
    public var files: [String]

    public var errors: [Diagnostic] { diagnostics.filter { $0.severity == .error } }
}

/// Reads flow files (YAML) into typed, validated flows. Every problem is reported with its position;
/// all problems of a file are reported, not just the first.
public struct FlowLoader: Sendable {
    public var registry: NodeRegistry
    public var environment: [String: String]

    public init(registry: NodeRegistry, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.registry = registry
        self.environment = environment
    }

    static let flowKeys = ["flow", "description", "tenant", "connections", "nodes", "queue_size", "retry"]
    static let nodeKeys = ["id", "type", "to", "errors", "retry", "queue_size", "description"]
    static let defaultQueueSize = 1024

    /// Flow files named by `paths`: files as given, folders searched for `*.yaml`/`*.yml` (recursively,
    /// leaving out `*.test.yaml` flow tests).
    public static func flowFiles(in paths: [String]) throws -> [String] {
        try files(in: paths) { path, named in named || !isTestFile(path) }
    }

    static func isTestFile(_ path: String) -> Bool { path.hasSuffix(".test.yaml") || path.hasSuffix(".test.yml") }

    /// YAML files named by `paths`: files as given, folders searched recursively (leaving out hidden
    /// folders and `fixtures`) for the files `keep` accepts; `keep` also sees whether a path was
    /// named directly.
    static func files(in paths: [String], keep: (String, Bool) -> Bool) throws -> [String] {
        var files: [String] = []
        let fm = FileManager.default
        for path in paths {
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw FlowFilesError(message: "no such file or folder: \(path)")
            }
            if !isDirectory.boolValue {
                if keep(path, true) { files.append(path) }
                continue
            }
            let base = path.hasSuffix("/") ? String(path.dropLast()) : path
            files += try yamlFiles(under: base, relative: "")
                .sorted()
                .map { "\(base)/\($0)" }
                .filter { keep($0, false) }
        }
        return files
    }

    /// YAML files below `folder` (paths relative to it), leaving out hidden folders and `fixtures`.
    /// A folder that cannot be listed (out of file descriptors, say) is an error, never "no files":
    /// the watcher would take it for flow files that were removed.
    private static func yamlFiles(under folder: String, relative: String, depth: Int = 0) throws -> [String] {
        // Folders linked into themselves end somewhere.
        guard depth < 16 else { return [] }
        let fm = FileManager.default
        let here = relative.isEmpty ? folder : "\(folder)/\(relative)"
        let names: [String]
        do {
            names = try fm.contentsOfDirectory(atPath: here)
        } catch {
            throw FlowFilesError(message: "cannot list \(here): \(error.localizedDescription)")
        }
        var found: [String] = []
        for name in names where !name.hasPrefix(".") {
            let path = relative.isEmpty ? name : "\(relative)/\(name)"
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: "\(folder)/\(path)", isDirectory: &isDirectory) else { continue }
            if isDirectory.boolValue {
                if name != "fixtures" { found += try yamlFiles(under: folder, relative: path, depth: depth + 1) }
            } else if name.hasSuffix(".yaml") || name.hasSuffix(".yml") {
                found.append(path)
            }
        }
        return found
    }

    public struct FlowFilesError: Error, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    public func load(paths: [String]) throws -> FlowSet {
        let files = try Self.flowFiles(in: paths)
        var set = FlowSet(flows: [], diagnostics: [], invalidFiles: [], files: files)
        var seen: [String: FlowDefinition] = [:]
        var claimed: [ResourceClaim: SourceLocation] = [:]
        for file in files {
            let (flow, diagnostics) = load(file: file)
            set.diagnostics += diagnostics
            guard var flow, !diagnostics.contains(where: { $0.severity == .error }) else {
                set.invalidFiles.append(file)
                continue
            }
            if let first = seen[flow.id] {
                set.diagnostics.append(Diagnostic(flow.location, "flow id '\(flow.id)' is already used by \(first.location)"))
                set.invalidFiles.append(file)
                continue
            }
            // Two nodes cannot hold one resource (a webhook path), in one flow or across flows.
            var duplicate = false
            for node in flow.nodes {
                for claim in registry.spec(node.type)?.claims?(node.options) ?? [] {
                    let at = node.options.locations[claim.option] ?? node.location
                    if let first = claimed[claim] {
                        set.diagnostics.append(Diagnostic(at, "the \(claim.what) '\(claim.value)' is already served by the node at \(first)"))
                        duplicate = true
                    } else {
                        claimed[claim] = at
                    }
                }
            }
            if duplicate {
                set.invalidFiles.append(file)
                continue
            }
            flow.file = file
            seen[flow.id] = flow
            set.flows.append(flow)
        }
        return set
    }

    public func load(file: String) -> (FlowDefinition?, [Diagnostic]) {
        guard let data = FileManager.default.contents(atPath: file) else {
            return (nil, [Diagnostic(SourceLocation(file: file, line: 1, column: 1), "cannot read the file")])
        }
        guard let text = String(data: data, encoding: .utf8) else {
            return (nil, [Diagnostic(SourceLocation(file: file, line: 1, column: 1), "the file is not UTF-8 text")])
        }
        return load(text: text, file: file)
    }

    public func load(text: String, file: String) -> (FlowDefinition?, [Diagnostic]) {
        var reader = FlowReader(
            file: file, registry: registry,
            substitution: Substitution(
                environment: environment,
                baseDirectory: URL(fileURLWithPath: file).deletingLastPathComponent()))
        let root: Yams.Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            return (nil, [reader.diagnostic(for: error)])
        } catch {
            return (nil, [Diagnostic(SourceLocation(file: file, line: 1, column: 1), "\(error)")])
        }
        guard let root else {
            return (nil, [Diagnostic(SourceLocation(file: file, line: 1, column: 1), "the file is empty: a flow needs 'flow' and 'nodes'")])
        }
        let flow = reader.readFlow(root, text: text)
        let diagnostics = reader.diagnostics.sorted { ($0.location.line, $0.location.column) < ($1.location.line, $1.location.column) }
        return (flow, diagnostics)
    }
}
