import Foundation

/// The numbers of a community's dashboard (`GET /api/v1/communities/{id}/dashboard`, drawn by
/// `/ui/communities/{id}`), all from the store: the members' measured energy summed by the store
/// per hour (`ReadingTotalsQuery`), the community's forecasts (series `community:ID`, else the sum
/// of its members'), the market's results, today's and tomorrow's prices, and the accuracy of the
/// forecasts. Intervals are the local hours of the community's time zone (a 25-hour day has 25) or,
/// for a month, its local days.
public enum CommunityDashboard {
    public enum Range: String, Sendable, CaseIterable { case day, week, month }

    /// Which issue of a forecast: the latest, or the last one issued before the local day it is for.
    public enum Vintage: String, Sendable, CaseIterable {
        case latest
        case dayAhead = "day-ahead"
    }

    public struct Request: Sendable {
        public var community: String
        public var tenant: String
        public var range: Range
        public var day: LocalDay
        public var vintage: Vintage
        /// Whether per-member figures are shown (a `read` key); a `totals` key sees the community's.
        public var memberDetail: Bool

        public init(community: String, tenant: String, range: Range, day: LocalDay, vintage: Vintage, memberDetail: Bool) {
            self.community = community
            self.tenant = tenant
            self.range = range
            self.day = day
            self.vintage = vintage
            self.memberDetail = memberDetail
        }
    }

    static let energy = ["consumption", "generation", "surplus"]
    static let market = ["market_bought", "market_sold", "market_value", "market_savings"]

    /// Price series looked for, per panel row, in this order: the first with readings is drawn.
    /// `GEO` is the PVPC system of the community's zone.
    static let prices: [(name: String, series: [String])] = [
        ("PVPC", ["ree:1001:GEO", "esios:1001:GEO", "esios:archive70:PCB"]),
        ("spot", ["ree:600:8741", "entsoe:ES", "esios:600:3"]),
        ("OMIE", ["omie:ES"]),
    ]

    /// The intervals drawn: their starts (UTC) and one more, the end.
    struct Axis {
        var bounds: [Date]
        var resolution: String
        var zone: TimeZone

        init(_ request: Request, zone: TimeZone) {
            self.zone = zone
            switch request.range {
            case .day, .week:
                let from = request.day.start(in: zone), to = request.day.adding(days: request.range == .day ? 1 : 7).start(in: zone)
                bounds = stride(from: from.timeIntervalSince1970, through: to.timeIntervalSince1970, by: 3600).map { Date(timeIntervalSince1970: $0) }
                resolution = "PT1H"
            case .month:
                let first = LocalDay(year: request.day.year, month: request.day.month, day: 1)
                let days = LocalDay.calendar(zone).range(of: .day, in: .month, for: first.start(in: zone))?.count ?? 30
                bounds = (0...days).map { first.adding(days: $0).start(in: zone) }
                resolution = "P1D"
            }
        }

        var from: Date { bounds[0] }
        var to: Date { bounds[bounds.count - 1] }
        var count: Int { bounds.count - 1 }

        /// The interval `ts` falls in.
        func index(_ ts: Date) -> Int? {
            guard ts >= from, ts < to else { return nil }
            if resolution == "PT1H" { return Int(ts.timeIntervalSince(from) / 3600) }
            return bounds.lastIndex { $0 <= ts }.flatMap { $0 < count ? $0 : nil }
        }

        func label(_ i: Int) -> String {
            let start = bounds[i]
            if resolution == "P1D" { return LocalDay(containing: start, in: zone).description }
            let offset = zone.secondsFromGMT(for: start) / 60
            return String(format: "%@ %@ %@%02d:%02d", LocalDay(containing: start, in: zone).description, CommunityDashboard.clock(start, zone),
                offset < 0 ? "-" : "+", abs(offset) / 60, abs(offset) % 60)
        }
    }

    /// `HH:mm` of `date` on the clocks of `zone`.
    static func clock(_ date: Date, _ zone: TimeZone) -> String {
        let c = LocalDay.calendar(zone).dateComponents([.hour, .minute], from: date)
        return String(format: "%02d:%02d", c.hour ?? 0, c.minute ?? 0)
    }

    public static func build(_ request: Request, members: CommunityMembers, store: any Store) async throws -> JSONValue {
        let zoneName = members.supplies.compactMap(\.zone).first ?? "peninsula"
        let zone = TariffZone(named: zoneName) ?? .peninsula
        let axis = Axis(request, zone: zone.timeZone)
        let communitySeries = "community:\(request.community)"

        // Each part asked of the store at once (SQLite reads them side by side, PostgreSQL on
        // connections of its pool). Measured: summed by the store per hour and per member.
        async let hourlyTotals = store.totals(ReadingTotalsQuery(
            tenant: request.tenant, series: members.cups, quantities: energy + market, from: axis.from, to: axis.to, bucket: 3600))
        async let memberTotals = store.totals(ReadingTotalsQuery(
            tenant: request.tenant, series: members.cups, quantities: energy + market, from: axis.from, to: axis.to, perSeries: true))
        async let predictedValues = forecasts(request, members: members, axis: axis, store: store)
        async let priceDays = prices(request, zone: zone, store: store)
        async let accuracyReports = accuracy(ForecastQuery(tenant: request.tenant, series: [communitySeries], from: axis.from, to: axis.to), store: store)

        var measured: [String: [Double?]] = [:]
        for q in energy + market { measured[q] = Array(repeating: nil, count: axis.count) }
        for t in try await hourlyTotals {
            guard let start = t.start, let i = axis.index(start) else { continue }
            let sum = (measured[t.quantity]?[i] ?? nil) ?? 0
            measured[t.quantity]?[i] = sum + t.sum
        }
        var sums: [String: [String: Double]] = [:]
        for t in try await memberTotals { if let s = t.series { sums[s, default: [:]][t.quantity] = t.sum } }
        var community: [String: Double] = [:]
        for member in sums.values { for (q, v) in member { community[q, default: 0] += v } }
        let predicted = try await predictedValues

        func values(_ list: [Double?]) -> JSONValue { .array(list.map { $0.map(JSONValue.number) ?? .null }) }
        var body: [String: JSONValue] = [
            "community": .string(request.community), "tenant": .string(request.tenant), "zone": .string(zone.rawValue),
            "time_zone": .string(axis.zone.identifier), "range": .string(request.range.rawValue), "date": .string(request.day.description),
            "vintage": .string(request.vintage.rawValue), "from": .string(ISO8601.string(axis.from)), "to": .string(ISO8601.string(axis.to)),
            "resolution": .string(axis.resolution), "members": .number(Double(members.cups.count)), "member_detail": .bool(request.memberDetail),
            "intervals": .array((0..<axis.count).map { .object(["start": .string(ISO8601.string(axis.bounds[$0])), "label": .string(axis.label($0))]) }),
            "energy": .object([
                "unit": "kWh",
                "measured": .object(Dictionary(uniqueKeysWithValues: energy.map { ($0, values(measured[$0]!)) })),
                "predicted": .object(Dictionary(uniqueKeysWithValues: energy.map { ($0, values(predicted[$0]!)) })),
            ]),
            "for_sale": .object([
                "unit": "kWh", "predicted_surplus": values(predicted["surplus"]!),
                "sold": values(measured["market_sold"]!), "bought": values(measured["market_bought"]!),
            ]),
            "ratios": .object(["community": ratios(community)]),
            "prices": try await priceDays,
            "accuracy": .array(try await accuracyReports),
        ]
        if request.memberDetail {
            body["members_detail"] = .array(members.cups.map { cups in
                var row = ratios(sums[cups] ?? [:]).objectValue ?? [:]
                row["cups"] = .string(cups)
                return .object(row)
            })
        }
        return .object(body)
    }

    /// The accuracy of the community's forecasts of each energy quantity.
    static func accuracy(_ query: ForecastQuery, store: any Store) async throws -> [JSONValue] {
        var reports: [JSONValue] = []
        for quantity in energy { reports += try await ForecastAccuracy.report(query, quantity: quantity, store: store) }
        return reports
    }

    /// Totals over the period and what they give: self-consumption (the share of the generation used
    /// on site) and self-sufficiency (the share of the use covered by it), nil without generation or use.
    static func ratios(_ sums: [String: Double]) -> JSONValue {
        let generation = sums["generation"] ?? 0, surplus = sums["surplus"] ?? 0, imported = sums["consumption"] ?? 0
        let selfConsumed = max(0, generation - surplus)
        func number(_ v: Double?) -> JSONValue { v.map(JSONValue.number) ?? .null }
        var row: [String: JSONValue] = [
            "consumption": .number(imported), "generation": .number(generation), "surplus": .number(surplus),
            "self_consumed": .number(selfConsumed),
            "self_consumption": number(generation > 0 ? selfConsumed / generation : nil),
            "self_sufficiency": number(imported + selfConsumed > 0 ? selfConsumed / (imported + selfConsumed) : nil),
        ]
        for q in market { row[q] = .number(sums[q] ?? 0) }
        return .object(row)
    }

    /// Predicted energy per interval: the community's own forecasts where it has some for a
    /// quantity, else the sum of its members'. Per series and interval the latest issue of any
    /// model (day-ahead: issued before the local day began). Forecasts finer than the interval are
    /// summed; a daily forecast counts only in a month's view, for a day with nothing finer.
    static func forecasts(_ request: Request, members: CommunityMembers, axis: Axis, store: any Store) async throws -> [String: [Double?]] {
        let communitySeries = "community:\(request.community)"
        var windows: [(from: Date, to: Date, vintage: Date)] = []
        switch request.vintage {
        case .latest: windows = [(axis.from, axis.to, .distantFuture)]
        case .dayAhead:
            var day = LocalDay(containing: axis.from, in: axis.zone)
            while day.start(in: axis.zone) < axis.to {
                windows.append((day.start(in: axis.zone), day.end(in: axis.zone), day.start(in: axis.zone)))
                day = day.adding(days: 1)
            }
        }
        var found: [Forecast] = []
        for w in windows {
            found += try await store.forecasts(ForecastQuery(
                tenant: request.tenant, series: [communitySeries] + members.cups, from: w.from, to: w.to, vintage: w.vintage))
        }
        var latest: [ReadingKey: Forecast] = [:]
        for f in found where energy.contains(f.reading.quantity) {
            let key = ReadingKey(f.reading)
            if let other = latest[key], other.issuedAt >= f.issuedAt { continue }
            latest[key] = f
        }
        let own = Set(latest.keys.filter { $0.series == communitySeries }.map(\.quantity))
        var fine: [String: [Double?]] = [:], daily: [String: [Double?]] = [:]
        for q in energy {
            fine[q] = Array(repeating: nil, count: axis.count)
            daily[q] = Array(repeating: nil, count: axis.count)
        }
        for (key, f) in latest {
            guard (key.series == communitySeries) == own.contains(key.quantity), let i = axis.index(key.ts) else { continue }
            let seconds = ISODuration.seconds(f.reading.resolution) ?? 3600
            if seconds <= 3600 {
                fine[key.quantity]![i] = (fine[key.quantity]![i] ?? 0) + f.reading.value
            } else if axis.resolution == "P1D", seconds <= 86_400 + 3600 {
                daily[key.quantity]![i] = (daily[key.quantity]![i] ?? 0) + f.reading.value
            }
        }
        var result: [String: [Double?]] = [:]
        for q in energy { result[q] = zip(fine[q]!, daily[q]!).map { $0 ?? $1 } }
        return result
    }

    /// Today's and tomorrow's prices (the requested day and the next) per panel row, in EUR/MWh, a
    /// forecast where no price is published yet; negative intervals and the cheapest three hours of
    /// each day marked.
    static func prices(_ request: Request, zone: TariffZone, store: any Store) async throws -> JSONValue {
        let geo = ["peninsula": "8741", "canarias": "8742", "baleares": "8743", "ceuta": "8744", "melilla": "8745"][zone.rawValue] ?? "8741"
        var days: [JSONValue] = []
        for day in [request.day, request.day.adding(days: 1)] {
            let from = day.start(in: zone.timeZone), to = day.end(in: zone.timeZone)
            var rows: [JSONValue] = []
            for row in prices {
                let candidates = row.series.map { $0.replacingOccurrences(of: "GEO", with: geo) }
                var chosen: (series: String, points: [(reading: Reading, predicted: Bool)])?
                for series in candidates {
                    let published = try await store.readings(ReadingQuery(tenant: request.tenant, series: [series], quantity: "price", from: from, to: to)).map(\.reading)
                    let known = Set(published.map(\.ts))
                    let predicted = try await store.forecasts(ForecastQuery(tenant: request.tenant, series: [series], quantity: "price", from: from, to: to))
                        .filter { !known.contains($0.reading.ts) }.map(\.reading)
                    if published.isEmpty && predicted.isEmpty { continue }
                    var seen = Set<Date>()
                    let points = (published.map { ($0, false) } + predicted.map { ($0, true) })
                        .sorted { $0.0.ts < $1.0.ts }.filter { seen.insert($0.0.ts).inserted }
                    chosen = (series, points)
                    break
                }
                guard let chosen else { continue }
                let perMWh = chosen.points.map { PriceSeries.perKWh($0.reading) * 1000 }
                let seconds = chosen.points.map { ISODuration.seconds($0.reading.resolution) ?? 3600 }
                // The cheapest intervals adding up to three hours.
                var cheapest = Set<Int>()
                var covered = 0
                for i in perMWh.indices.sorted(by: { perMWh[$0] < perMWh[$1] }) where covered < 3 * 3600 {
                    cheapest.insert(i)
                    covered += seconds[i]
                }
                rows.append([
                    "name": .string(row.name), "series": .string(chosen.series), "unit": "EUR/MWh",
                    "points": .array(chosen.points.indices.map { i in
                        let r = chosen.points[i].reading
                        return [
                            "start": .string(ISO8601.string(r.ts)), "resolution": .string(r.resolution),
                            "label": .string(clock(r.ts, zone.timeZone)),
                            "value": .number((perMWh[i] * 1000).rounded() / 1000), "predicted": .bool(chosen.points[i].predicted),
                            "negative": .bool(perMWh[i] < 0), "cheapest": .bool(cheapest.contains(i)),
                        ]
                    }),
                ])
            }
            days.append(["day": .string(day.description), "rows": .array(rows)])
        }
        return .array(days)
    }
}
