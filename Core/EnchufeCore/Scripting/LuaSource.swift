import Foundation

/// Lua text from a flow file, with where it sits there, so that every Lua error names the flow
/// file and the line of the file (not of the snippet).
public struct LuaSource: Sendable, Equatable {
    public var text: String
    /// The flow file (or script file) the text comes from.
    public var file: String
    /// The line of `file` on which the text's first line is.
    public var firstLine: Int

    public init(text: String, file: String, firstLine: Int = 1) {
        self.text = text
        self.file = file
        self.firstLine = max(1, firstLine)
    }

    /// The option's value as Lua source, located where the flow file has it.
    public static func option(_ name: String, in options: NodeOptions) -> LuaSource? {
        guard let text = options.string(name) else { return nil }
        let at = options.locations[name]
        return LuaSource(text: text, file: at?.file ?? "flow", firstLine: at?.line ?? 1)
    }

    /// The chunk Lua compiles: blank lines first, so Lua's own line numbers are the file's.
    var chunk: String { String(repeating: "\n", count: firstLine - 1) + text }
    var chunkName: String { "@" + file }

    /// An expression wrapped as a chunk taking `msg` (and `item`, for per-item mappings) and
    /// returning the expression's value.
    func expressionChunk() -> LuaSource {
        LuaSource(text: "local msg, item = ...; return (" + text + ")", file: file, firstLine: firstLine)
    }
}

/// How much one script may do: VM instructions per call and memory of the node's Lua state.
public struct LuaLimits: Sendable, Equatable {
    public var instructions: Int
    public var memoryBytes: Int
    /// Wall-clock time one call may take, C functions included (zero: no limit).
    public var duration: Duration

    public init(instructions: Int = 1_000_000, memoryBytes: Int = 16 << 20, duration: Duration = .seconds(1)) {
        self.instructions = instructions
        self.memoryBytes = memoryBytes
        self.duration = duration
    }

    var seconds: Double { max(0, duration.seconds) }

    static let maxInstructions = OptionKey<Int>(
        "max_instructions", default: 1_000_000,
        doc: "Lua VM instructions one call may run before it is stopped with an error (0: no limit).")
    static let maxMemoryMB = OptionKey<Int>("max_memory_mb", default: 16, doc: "Memory the node's Lua state may use, in MiB.")
    static let maxDuration = OptionKey<Duration>(
        "max_duration", default: .seconds(1),
        doc: "Wall-clock time one call may take before it is stopped with an error, time spent in string functions included (0s: no limit).")

    public static let optionSpecs: [OptionSpec] = [maxInstructions.spec, maxMemoryMB.spec, maxDuration.spec]

    public init(options: NodeOptions) {
        self.init(instructions: options[Self.maxInstructions], memoryBytes: options[Self.maxMemoryMB] << 20, duration: options[Self.maxDuration])
    }
}

/// A Lua script or expression failed: a syntax error, a runtime error, a limit hit, or a value
/// that cannot become a message. The message carries the flow file and line when Lua knows them.
public struct LuaError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable { case syntax, runtime, instructionLimit, timeLimit, memoryLimit, value }
    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { "lua: " + message }

    /// The file line and bare message of a Lua message `FILE:LINE: TEXT`, if it has that form.
    public var position: (line: Int, text: String)? {
        var rest = Substring(message)
        while let colon = rest.firstIndex(of: ":") {
            let after = rest[rest.index(after: colon)...]
            let digits = after.prefix(while: \.isNumber)
            if !digits.isEmpty, after.dropFirst(digits.count).first == ":", let line = Int(digits) {
                return (line, String(after.dropFirst(digits.count + 1)).trimmingCharacters(in: .whitespaces))
            }
            rest = after
        }
        return nil
    }
}
