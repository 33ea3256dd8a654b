import Foundation

/// `coefficients`: sharing coefficients of a community's members from their stored history.
struct CoefficientsNode: TransformNode {
    enum Key {
        static let community = OptionKey<String?>("community", doc: "The community whose member supplies share the generation.")
        static let members = OptionKey<[String]>("members", default: [], doc: "CUPS of the members, instead of `community`.")
        static let mode = OptionKey<String>("mode", .enumeration(["static", "hourly"]), default: "static", doc: "Static coefficients, or hourly ones for a year.")
        static let quantity = OptionKey<String>("quantity", default: "consumption", doc: "The history shares are computed from.")
        static let from = OptionKey<String>("from", default: "-365d", doc: "Static: first day of the history (`YYYY-MM-DD`, `-365d`, `today`).")
        static let until = OptionKey<String>("until", default: "today", doc: "Static: the day after the history (`to` is the node's wiring).")
        static let year = OptionKey<Int?>("year", doc: "The year the coefficients are for (default: next year for hourly, this year for static).")
        static let cau = OptionKey<String?>("cau", doc: "The installation's CAU (26 characters), for the file name.")
        static let borderPoint = OptionKey<String>("border_point", default: "0F", doc: "Appended to 20-character CUPS in the file.")
    }

    static let spec = NodeSpec(
        type: "coefficients", kind: .transform,
        summary: "Sharing coefficients (β) of a community from its members' history: static, or hourly for a year",
        doc: """
            On each message, reads the members' stored readings of `quantity` (default
            `consumption`) and shares 1 among them in proportion:
            - `mode: static`: one coefficient per member from the total of `from`..`until` (local
              days, `until` excluded; default the last 365 days);
            - `mode: hourly`: a coefficient per member for every hour of `year` (default next year),
              each from that member's share of the same hour of the year before (ordinal hours of
              the year, 1 = 00:00–01:00 on 1 January in Madrid time; 8,760 or 8,784 of them).
            Coefficients have six decimals and every set sums to exactly 1,000000 (largest
            remainder in micro-units); a set with no history at all is shared equally.

            The members are the tenant's supplies whose `community` is `community`
            (`PUT /api/v1/supplies/{cups}`), or the CUPS listed in `members`. The message that goes
            out carries one reading per member (`quantity: coefficient`, unit `1`, `resolution:
            P1Y` at the start of `year` for static; `PT1H` for each hour of `year` for hourly) and a
            payload `{community, mode, year, members, file, name}`: `file` is the coefficient file
            in the distributors' format (`CUPS;0,500000`, or `CUPS;hour;0,500000`; 22-character
            CUPS, a 20-character one padded with `border_point`), `name` is `<cau>_<year>.txt` when
            `cau` is given. The `coefficients` format of `export` and `file.out` writes the same
            file from the stored readings.
            """,
        options: [
            Key.community.spec,
            Key.members.spec,
            Key.mode.spec,
            Key.quantity.spec,
            Key.from.spec,
            Key.until.spec,
            Key.year.spec,
            Key.cau.spec,
            Key.borderPoint.spec,
        ],
        example: """
            - id: betas
              type: coefficients
              community: solar-roof
              mode: hourly
              cau: ES0031000000000001BJ0FA000
              to: [store]
            """,
        check: { options in
            var problems: [OptionProblem] = []
            if options[Key.community] == nil && options[Key.members].isEmpty {
                problems.append(OptionProblem(option: "community", "give the community (its supplies are the members) or a list of members"))
            }
            for name in ["from", "until"] {
                if let d = options.string(name), !LocalDay.isValid(d) {
                    problems.append(OptionProblem(option: name, "'\(d)' is not a day: YYYY-MM-DD, today, yesterday or -Nd"))
                }
            }
            for (i, cups) in options[Key.members].enumerated() where !CUPS.isValid(cups) {
                problems.append(OptionProblem(option: "members.\(i)", "'\(cups)' is not a CUPS (ES, 16 digits, 2 control letters that match them)"))
            }
            if let cau = options[Key.cau], cau.count != 26 || !CUPS.isValid(String(cau.prefix(22))) || cau.dropFirst(22).first != "A" {
                problems.append(OptionProblem(option: "cau", "'\(cau)' is not a CAU: the 22-character CUPS, 'A' and 3 digits"))
            }
            return problems
        },
        make: { context in .transform(CoefficientsNode(context.options)) })

    let community: String?
    let members: [String]
    let hourly: Bool
    let quantity: String
    let from: String
    let until: String
    let year: Int?
    let cau: String?
    let borderPoint: String

    init(_ o: NodeOptions) {
        community = o[Key.community]
        members = o[Key.members]
        hourly = o[Key.mode] == "hourly"
        quantity = o[Key.quantity]
        from = o[Key.from]
        until = o[Key.until]
        year = o[Key.year]
        cau = o[Key.cau]
        borderPoint = o[Key.borderPoint]
    }

    func process(_ message: Message, _ context: NodeContext) async throws -> [Output] {
        let zone = LocalDay.madrid
        let today = LocalDay(containing: context.clock.now(), in: zone)
        var members = members
        if members.isEmpty {
            members = try await CommunityMembers.required(community ?? "", by: Self.spec.type, context).cups
        }
        let year = year ?? (hourly ? today.year + 1 : today.year)
        var file = CoefficientFile(kind: hourly ? .hourly : .static, sets: [:])
        var readings: [Reading] = []
        func reading(_ cups: String, _ ts: Date, _ resolution: String, _ micro: Int) -> Reading {
            Reading(
                tenant: context.tenant, series: cups, quantity: "coefficient", ts: ts, resolution: resolution,
                value: Double(micro) / Double(SharingCoefficients.unit), unit: "1", quality: .computed, source: context.readingSource)
        }
        if hourly {
            // The basis: each member's total per ordinal hour of the year before.
            let basisYear = year - 1
            let basisHours = SharingCoefficients.hours(in: basisYear)
            var totals = Array(repeating: Array(repeating: 0.0, count: members.count), count: basisHours + 1)
            let index = Dictionary(uniqueKeysWithValues: members.enumerated().map { ($1, $0) })
            let query = ReadingQuery(
                tenant: context.tenant, series: members, quantity: quantity,
                from: LocalDay(year: basisYear, month: 1, day: 1).start(in: zone), to: LocalDay(year: year, month: 1, day: 1).start(in: zone))
            for try await page in context.store.readingPages(query) {
                for r in page {
                    let (y, hour) = SharingCoefficients.hourOfYear(r.reading.ts, zone: zone)
                    guard y == basisYear, hour <= basisHours, let m = index[r.reading.series] else { continue }
                    totals[hour][m] += r.reading.value
                }
            }
            for hour in 1...SharingCoefficients.hours(in: year) {
                // A leap year's last day takes the basis's last day again.
                let shares = SharingCoefficients.allocate(totals[hour <= basisHours ? hour : hour - 24])
                let ts = SharingCoefficients.hourStart(year: year, hour: hour, zone: zone)
                for (m, cups) in members.enumerated() {
                    file.sets[hour, default: [:]][CUPS.full(cups, borderPoint: borderPoint)] = shares[m]
                    readings.append(reading(cups, ts, "PT1H", shares[m]))
                }
            }
        } else {
            let first = LocalDay.parse(from, today: today) ?? today.adding(days: -365)
            let last = LocalDay.parse(until, today: today) ?? today
            var totals = Dictionary(uniqueKeysWithValues: members.map { ($0, 0.0) })
            let query = ReadingQuery(tenant: context.tenant, series: members, quantity: quantity, from: first.start(in: zone), to: last.start(in: zone))
            for try await page in context.store.readingPages(query) {
                for r in page { totals[r.reading.series, default: 0] += r.reading.value }
            }
            let shares = SharingCoefficients.allocate(members.map { totals[$0] ?? 0 })
            let ts = LocalDay(year: year, month: 1, day: 1).start(in: zone)
            for (m, cups) in members.enumerated() {
                file.sets[0, default: [:]][CUPS.full(cups, borderPoint: borderPoint)] = shares[m]
                readings.append(reading(cups, ts, "P1Y", shares[m]))
            }
        }
        try file.check(year: hourly ? year : nil)
        var payload: [String: JSONValue] = [
            "mode": .string(hourly ? "hourly" : "static"), "year": .number(Double(year)),
            "members": .array(members.map { .string($0) }), "file": .string(file.text()),
        ]
        if let community { payload["community"] = .string(community) }
        if let cau { payload["name"] = .string(CoefficientFile.name(cau: cau, year: year)) }
        var out = message
        out.payload = .object(payload)
        out.readings = readings
        return [.out(out)]
    }
}
