import Foundation
import Synchronization

/// `export`: a named export of stored readings, served at `GET /api/v1/exports/{name}`.
struct ExportNode: SourceNode {
    enum Key {
        static let name = RequiredOptionKey<String>("name", doc: "The export's name in the URL (letters, digits, `-`, `_`, `.`).", example: "monthly-billing")
        static let format = OptionKey<String>("format", .enumeration(ExportFormat.allCases.map(\.rawValue)), default: "csv", doc: "The file format.")
        static let series = OptionKey<[String]?>("series", doc: "Only these series (CUPS, device ids...).")
        static let quantity = OptionKey<String?>("quantity", doc: "Only this quantity (default all; `coefficient` for the coefficients format).")
        static let resolution = OptionKey<String?>("resolution", doc: "Aggregate to `PT15M`, `PT30M`, `PT1H` or `P1D` (table formats).")
        static let tenant = OptionKey<String?>("tenant", doc: "Must be the flow's tenant (it is the default): an export serves one tenant's data.")
        static let zone = OptionKey<String>("zone", .enumeration(TariffZone.allCases.map(\.rawValue)), default: "peninsula", doc: "Local time of dates and curve labels.")
        static let cau = OptionKey<String?>("cau", doc: "Coefficients: the installation's CAU, for the file name.")
        static let borderPoint = OptionKey<String>("border_point", default: "0F", doc: "Coefficients: appended to 20-character CUPS.")
    }

    static let spec = NodeSpec(
        type: "export", kind: .source,
        summary: "A named export of stored readings, served at GET /api/v1/exports/{name} (csv, json, ndjson, datadis-csv, f5d, coefficients, settlement)",
        doc: """
            Declares what a billing application pulls, by name: the flow's tenant's readings of
            `series` (default all) and `quantity` (default all; `coefficient` for the `coefficients`
            format), optionally aggregated to `resolution` (sum for energy, mean otherwise), written
            in `format`. The request gives the range: `GET /api/v1/exports/{name}?from=&to=` (local
            dates of `zone`, `to` excluded, or instants with an offset), with a key of the flow's
            tenant with the `read` scope (another tenant's key gets 404). The node reads the store
            when asked; it takes no input and sends nothing.

            - `csv`, `json`, `ndjson`: one row per reading, streamed.
            - `datadis-csv`, `f5d`: one row per supply and hour of the `consumption`, `surplus`,
              `generation` and `self_consumption` readings (quarter-hours summed into their hours;
              an hour with quarters missing is marked estimated), labelled in `zone`'s local time
              (f5d in Wh with the season flag); `webhook.in` and `file.in` read them back.
            - `coefficients`: the distributors' coefficient file of the stored `coefficient`
              readings (those the `coefficients` node writes): `CUPS;0,500000` for static ones,
              `CUPS;hour;0,500000` for hourly ones of one year; every set must sum to exactly
              1,000000, else the answer is `409` saying which. With `cau`, the answer names the file
              `<cau>_<year>.txt` (Content-Disposition).
            - `settlement`: a community market's statement (what `community.market` stored):
              `cups;bought_kWh;sold_kWh;value_EUR;grid_import_kWh;grid_export_kWh;savings_EUR`,
              summed per member of `series` over the range, then a `total` row — the same as
              `GET /api/v1/communities/{id}/settlement?format=csv`.
            """,
        options: [
            Key.name.spec,
            Key.format.spec,
            Key.series.spec,
            Key.quantity.spec,
            Key.resolution.spec,
            Key.tenant.spec,
            Key.zone.spec,
            Key.cau.spec,
            Key.borderPoint.spec,
        ],
        takesInput: false,
        example: """
            - id: billing
              type: export
              name: monthly-curves
              format: f5d
              quantity: consumption
            """,
        everyInstance: true,
        check: { options in
            var problems: [OptionProblem] = []
            if let name = options[Key.name], name.isEmpty || !name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) {
                problems.append(OptionProblem(option: "name", "'\(name)' is not an export name: letters, digits, '-', '_' and '.' only"))
            }
            if let resolution = options[Key.resolution], Resampler.seconds(resolution) == nil {
                problems.append(OptionProblem(option: "resolution", "'\(resolution)' is not one readings are aggregated to: PT15M, PT30M, PT1H, P1D"))
            }
            return problems
        },
        make: { context in .source(ExportNode(context)) })

    let definition: ExportRoutes.Export
    let flow: String
    let node: String

    init(_ context: NodeBuildContext) {
        let o = context.options
        let format = ExportFormat(rawValue: o[Key.format]) ?? .csv
        definition = ExportRoutes.Export(
            name: o[Key.name] ?? context.node, tenant: context.tenant, flow: context.flow, node: context.node, format: format,
            series: o[Key.series] ?? [], quantity: o[Key.quantity] ?? (format == .coefficients ? "coefficient" : nil),
            resolution: o[Key.resolution].flatMap(Resampler.seconds),
            zone: TariffZone(rawValue: o[Key.zone]) ?? .peninsula,
            cau: o[Key.cau], borderPoint: o[Key.borderPoint],
            declaredTenant: o[Key.tenant])
        flow = context.flow
        node = context.node
    }

    func run(_ context: SourceContext) async throws {
        if let declared = definition.declaredTenant, declared != definition.tenant {
            throw PermanentError("export '\(definition.name)': tenant '\(declared)' is not the flow's tenant '\(definition.tenant)'")
        }
        let routes = context.node.exports
        try routes.register(definition)
        defer { routes.unregister(definition.name, flow: flow, node: node) }
        context.logger.info("serving GET /api/v1/exports/\(definition.name) (\(definition.format.rawValue))")
        try await context.node.clock.waitUntilCancelled()
    }
}

/// The named exports of the running flows (`export` nodes), by name.
public final class ExportRoutes: Sendable {
    public struct Export: Sendable {
        public var name: String
        public var tenant: String
        public var flow: String
        public var node: String
        public var format: ExportFormat
        public var series: [String]
        public var quantity: String?
        /// Seconds to aggregate to.
        public var resolution: Int?
        public var zone: TariffZone
        public var cau: String?
        public var borderPoint: String
        var declaredTenant: String?
    }

    private let exports = Mutex<[String: Export]>([:])

    public init() {}

    /// Serves `export` under its name; a name two nodes claim is refused.
    public func register(_ export: Export) throws {
        try exports.withLock { all in
            if let other = all[export.name], other.flow != export.flow || other.node != export.node {
                throw PermanentError("the export name '\(export.name)' is already served by \(other.flow)/\(other.node)")
            }
            all[export.name] = export
        }
    }

    public func unregister(_ name: String, flow: String, node: String) {
        exports.withLock { all in
            if let e = all[name], e.flow == flow, e.node == node { all[name] = nil }
        }
    }

    public func export(_ name: String) -> Export? { exports.withLock { $0[name] } }
}
