import Foundation

/// `resample`: the readings of a message to another resolution.
struct ResampleNode: TransformNode {
    enum Key {
        static let resolution = RequiredOptionKey<String>("resolution", doc: "`PT15M`, `PT30M`, `PT1H` or `P1D`.", example: "PT1H")
        static let timezone = OptionKey<String>("timezone", .timezone, default: "Europe/Madrid", doc: "Whose local days `P1D` means.")
    }

    static let spec = NodeSpec(
        type: "resample", kind: .transform,
        summary: "Readings to another resolution: 15 min → 1 h or a day (sum for energy, mean otherwise), and 1 h → 15 min",
        doc: """
            Coarser: the readings of one series and quantity in one interval of `resolution`
            (`PT30M`, `PT1H`, `P1D`: local days of `timezone`, 23 or 25 hours on DST days) become one
            reading at the interval's start: energy (kWh, Wh, MWh) summed, anything else (power,
            price, temperature) averaged, with the lowest quality of its parts. Only whole intervals
            are aggregated: an interval the message holds only part of goes out as its readings
            were (never a partial sum); put a `batch` before the node to collect whole hours or days.

            Finer (`PT1H` → `PT15M`, `PT30M`): energy is split evenly (and marked `estimated` if it
            was measured, since the split is not what a meter measured); prices and other rates
            are repeated, keeping their quality. Daily and longer readings are not split, and readings
            already at the resolution or with no fixed length (`PT0S`) pass as they are.
            """,
        options: [
            Key.resolution.spec,
            Key.timezone.spec,
        ],
        example: """
            - id: hourly
              type: resample
              resolution: PT1H
              to: [store]
            """,
        check: { options in
            guard let r = options[Key.resolution], Resampler.seconds(r) == nil else { return [] }
            return [OptionProblem(option: "resolution", "'\(r)' is not one readings are resampled to: PT15M, PT30M, PT1H, P1D")]
        },
        make: { context in .transform(try ResampleNode(context.options)) })

    let seconds: Int
    let resolution: String
    let zone: TimeZone

    init(_ o: NodeOptions) throws {
        resolution = try o.required(Key.resolution)
        seconds = Resampler.seconds(resolution) ?? 3600
        zone = TimeZone(identifier: o[Key.timezone]) ?? LocalDay.madrid
    }

    func process(_ message: Message, _ context: NodeContext) async throws -> [Output] {
        var out = message
        out.readings = resample(message.readings)
        return [.out(out)]
    }

    func resample(_ readings: [Reading]) -> [Reading] {
        let interval = Resampler(seconds: seconds, zone: zone)
        var result: [Reading] = []
        var groups: [ReadingKey: [Reading]] = [:]
        var order: [ReadingKey] = []
        for r in readings {
            guard let own = ISODuration.seconds(r.resolution), own > 0, own != seconds else {
                result.append(r)
                continue
            }
            if own > seconds {
                result += split(r, own: own)
                continue
            }
            let key = ReadingKey(series: r.series, quantity: r.quantity, ts: interval.intervalStart(r.ts))
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append(r)
        }
        for key in order {
            let parts = groups[key]!
            let length = seconds >= 86_400
                ? LocalDay(containing: key.ts, in: zone).adding(days: 1).start(in: zone).timeIntervalSince(key.ts)
                : Double(seconds)
            let covered = Set(parts.map(\.ts)).count * (ISODuration.seconds(parts[0].resolution) ?? 0)
            guard Double(covered) == length, Set(parts.map(\.resolution)).count == 1, parts.count == Set(parts.map(\.ts)).count else {
                result += parts
                continue
            }
            var r = parts[0]
            let sum = parts.map(\.value).reduce(0, +)
            r.ts = key.ts
            r.resolution = resolution
            r.value = Resampler.isEnergy(r) ? sum : sum / Double(parts.count)
            r.quality = parts.map(\.quality).min { $0.rank < $1.rank } ?? r.quality
            r.tags = parts.dropFirst().allSatisfy({ $0.tags == parts[0].tags }) ? parts[0].tags : [:]
            result.append(r)
        }
        return result
    }

    /// An hour (or half hour) into quarter-hours; longer readings are not split.
    func split(_ r: Reading, own: Int) -> [Reading] {
        guard own <= 3600, own % seconds == 0 else { return [r] }
        let n = own / seconds
        let energy = Resampler.isEnergy(r)
        return (0..<n).map { i in
            var part = r
            part.ts = r.ts.addingTimeInterval(Double(i * seconds))
            part.resolution = resolution
            if energy {
                part.value = r.value / Double(n)
                if r.quality == .measured { part.quality = .estimated }
            }
            return part
        }
    }
}
