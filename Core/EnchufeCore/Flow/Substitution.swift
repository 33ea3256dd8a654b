import Foundation

/// `${env:NAME}`, `${env:NAME:-default}` and `${file:PATH}` in flow values, replaced at load time.
/// `$${` writes a literal `${`.
struct Substitution {
    var environment: [String: String]
    /// The folder of the flow file: `${file:PATH}` is relative to it.
    var baseDirectory: URL

    enum Problem: Error, CustomStringConvertible {
        case missingVariable(String)
        case unreadableFile(String)
        case malformed(String)
        case unknownSource(String)

        var description: String {
            switch self {
            case .missingVariable(let name):
                return "environment variable '\(name)' is not set (write ${env:\(name):-default} to give a default)"
            case .unreadableFile(let path): return "cannot read file '\(path)' named by ${file:\(path)}"
            case .malformed(let text): return "unterminated substitution '\(text)' (write ${env:NAME} or ${file:PATH})"
            case .unknownSource(let source):
                return "unknown substitution '${\(source):...}' (use ${env:NAME} or ${file:PATH})"
            }
        }
    }

    /// The text with every substitution replaced; `substituted` tells whether there were any.
    func apply(_ text: String) throws(Problem) -> (text: String, substituted: Bool) {
        guard text.contains("${") else { return (text, false) }
        var out = ""
        var rest = Substring(text)
        var substituted = false
        while let start = rest.range(of: "${") {
            let before = rest[rest.startIndex..<start.lowerBound]
            if before.hasSuffix("$") {
                out += before.dropLast() + "${"
                rest = rest[start.upperBound...]
                continue
            }
            out += before
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
                throw .malformed(String(rest[start.lowerBound...]))
            }
            let body = rest[start.upperBound..<end]
            out += try resolve(body)
            substituted = true
            rest = rest[rest.index(after: end)...]
        }
        out += rest
        return (out, substituted)
    }

    private func resolve(_ body: Substring) throws(Problem) -> String {
        guard let colon = body.firstIndex(of: ":") else { throw .malformed("${\(body)}") }
        let kind = body[body.startIndex..<colon]
        let argument = body[body.index(after: colon)...]
        switch kind {
        case "env":
            let parts = argument.split(separator: ":-", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(parts[0])
            if let value = environment[name], !value.isEmpty { return value }
            if parts.count == 2 { return String(parts[1]) }
            throw .missingVariable(name)
        case "file":
            let path = String(argument)
            let url = path.hasPrefix("/") ? URL(fileURLWithPath: path) : baseDirectory.appendingPathComponent(path)
            guard let data = FileManager.default.contents(atPath: url.path) else { throw .unreadableFile(path) }
            var value = String(decoding: data, as: UTF8.self)
            while value.hasSuffix("\n") || value.hasSuffix("\r") { value.removeLast() }
            return value
        default:
            throw .unknownSource(String(kind))
        }
    }
}
