import Crypto
import Foundation

/// `pseudonymize`: identifiers replaced by a keyed HMAC, stable for one key.
struct PseudonymizeNode: TransformNode {
    enum Key {
        static let key = RequiredOptionKey<Secret>("key", secret: true, doc: "The HMAC key (keep it: another key gives other pseudonyms).", example: "${PSEUDONYM_KEY}")
        static let fields = OptionKey<[String]>("fields", default: ["series"], doc: "`series` (of every reading) and message fields to replace.")
    }

    static let spec = NodeSpec(
        type: "pseudonymize", kind: .transform,
        summary: "Replaces CUPS and other identifiers by a keyed HMAC-SHA256 pseudonym, stable per key",
        doc: """
            Each value named in `fields` (default: the readings' `series`) is replaced by a pseudonym
            derived with HMAC-SHA256 under `key`: the same value and key always give the same
            pseudonym, and without the key it cannot be reversed or recomputed. A CUPS becomes
            another well-formed CUPS of the same length (`ES`, 16 digits from the HMAC, their
            control letters, and the original border point if it had one; the 20- and 22-character
            forms of one supply get the same pseudonym), so validators and
            fixed-width columns downstream still take it; any other value becomes 32 hex characters.
            `fields` lists `series` and message fields (`payload.cups`, `attributes.cups`, `topic`);
            a field that is absent is left absent.
            """,
        options: [
            Key.key.spec,
            Key.fields.spec,
        ],
        example: """
            - id: anonymous
              type: pseudonymize
              key: ${PSEUDONYM_KEY}
              fields: [series, payload.cups]
              to: [research-export]
            """,
        check: { options in
            var problems: [OptionProblem] = []
            for (i, field) in options[Key.fields].enumerated() where field != "series" {
                do { _ = try MessagePath(field) } catch { problems.append(OptionProblem(option: "fields.\(i)", "\(error)")) }
            }
            if let key = options[Key.key], key.reveal().count < 16 {
                problems.append(OptionProblem(option: "key", "the key is shorter than 16 characters: use a long random secret"))
            }
            return problems
        },
        make: { context in .transform(try PseudonymizeNode(context.options)) })

    let key: SymmetricKey
    let series: Bool
    let paths: [MessagePath]

    init(_ o: NodeOptions) throws {
        key = SymmetricKey(data: Data(try o.required(Key.key).reveal().utf8))
        let fields = o[Key.fields]
        series = fields.contains("series")
        paths = try fields.filter { $0 != "series" }.map(MessagePath.init)
    }

    func process(_ message: Message, _ context: NodeContext) async throws -> [Output] {
        var out = message
        if series {
            for i in out.readings.indices { out.readings[i].series = pseudonym(out.readings[i].series) }
        }
        for path in paths {
            guard let value = path.value(in: out), !value.isNull else { continue }
            path.set(.string(pseudonym(value.templateText)), in: &out)
        }
        return [.out(out)]
    }

    /// The pseudonym of `value`: a CUPS for a CUPS, else 32 hex characters.
    func pseudonym(_ value: String) -> String {
        guard CUPS.isValid(value) else {
            let mac = HMAC<SHA256>.authenticationCode(for: Data(value.utf8), using: key)
            return mac.prefix(16).map { String(format: "%02x", $0) }.joined()
        }
        // The supply is its first 20 characters: with or without a border point, one pseudonym.
        let mac = Array(HMAC<SHA256>.authenticationCode(for: Data(value.prefix(20).utf8), using: key))
        var number: UInt64 = 0
        for byte in mac.prefix(8) { number = number << 8 | UInt64(byte) }
        let digits = String(format: "%016llu", number % 10_000_000_000_000_000)
        return "ES" + digits + CUPS.controlLetters(digits) + value.dropFirst(20)
    }
}
