import EnchufeCore
import Foundation

/// The node types this package adds.
public enum SolarNodes {
    public static let specs: [NodeSpec] = [SelfSufficiencyNode.spec]
}

/// `solar.self_sufficiency`: for every series and interval of a message with both `consumption`
/// (from the grid) and `self_consumption` readings, adds a `self_sufficiency` reading: the share of
/// the supply's demand its own panels covered, in percent.
struct SelfSufficiencyNode: TransformNode {
    static let spec = NodeSpec(
        type: "solar.self_sufficiency", kind: .transform,
        summary: "Adds the share of demand covered by the supply's own panels (%), per interval (a node type from a Swift package)",
        doc: """
            For every series and interval with both `consumption` (bought from the grid) and
            `self_consumption` (made and used on site) readings in the message, a reading
            `self_sufficiency` = self_consumption / (self_consumption + consumption) · 100, rounded
            to `decimals`, unit `%`, quality `computed` (or the lower of the two). Intervals with no
            demand at all get none. The input readings go on with it.
            """,
        options: [
            OptionSpec("decimals", .integer, default: 1, doc: "Decimals of the percentage (0–6).")
        ],
        example: """
            - id: sufficiency
              type: solar.self_sufficiency
              decimals: 1
              to: [store]
            """,
        check: { options in
            guard let d = options.int("decimals"), !(0...6).contains(d) else { return [] }
            return [OptionProblem(option: "decimals", "must be between 0 and 6")]
        },
        make: { context in .transform(SelfSufficiencyNode(decimals: context.options.int("decimals") ?? 1)) })

    let decimals: Int

    func process(_ message: Message, _ context: NodeContext) async throws -> [Output] {
        struct Key: Hashable { var series: String, ts: Date, resolution: String }
        var parts: [Key: (grid: Reading?, own: Reading?)] = [:]
        for r in message.readings {
            let key = Key(series: r.series, ts: r.ts, resolution: r.resolution)
            switch r.quantity {
            case "consumption": parts[key, default: (nil, nil)].grid = r
            case "self_consumption": parts[key, default: (nil, nil)].own = r
            default: break
            }
        }
        var out = message
        let scale = pow(10, Double(decimals))
        for (key, part) in parts.sorted(by: { ($0.key.series, $0.key.ts) < ($1.key.series, $1.key.ts) }) {
            guard let grid = part.grid, let own = part.own, grid.value + own.value > 0 else { continue }
            let share = (own.value / (own.value + grid.value) * 100 * scale).rounded() / scale
            let quality: Quality = grid.quality == .measured && own.quality == .measured ? .computed : .estimated
            out.readings.append(Reading(
                series: key.series, quantity: "self_sufficiency", ts: key.ts, resolution: key.resolution,
                value: share, unit: "%", quality: quality))
        }
        return [.out(out)]
    }
}
