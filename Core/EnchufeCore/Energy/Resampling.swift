import Foundation

/// Readings of one resolution onto a coarser one: energy summed (`kWh`, `Wh`, `MWh`), everything
/// else — power, prices, temperatures — averaged. Fed in (series, quantity, ts) order, as the store
/// hands readings out, it holds one interval at a time: `add` returns the intervals it completed,
/// `finish` the last one.
///
/// Intervals of a day or more (`P1D`) are local days in `zone` (23 or 25 hours on DST days);
/// shorter ones (`PT15M`, `PT1H`) are counted from the hour, the same in every Spanish zone. A sum
/// of energy with readings missing from its interval is marked `estimated`: it is not a measurement
/// of the whole interval.
public struct Resampler: Sendable {
    public let seconds: Int
    public let zone: TimeZone
    private var open: (key: ReadingKey, first: StoredReading, sum: Double, count: Int, covered: Int, quality: Quality, revision: Int, seq: Int64)?

    public init(seconds: Int, zone: TimeZone = LocalDay.madrid) {
        self.seconds = seconds
        self.zone = zone
    }

    /// The seconds of a resolution readings are aggregated to (`PT15M`, `PT30M`, `PT1H`, `P1D`:
    /// whole quarter-hours, or days), or nil.
    public static func seconds(_ resolution: String) -> Int? {
        guard let seconds = ISODuration.seconds(resolution), seconds >= 900, seconds % 900 == 0 || seconds % 86_400 == 0 else { return nil }
        return seconds
    }

    /// Whether a reading is an amount of energy (summed) rather than a rate or a level (averaged).
    public static func isEnergy(_ r: Reading) -> Bool {
        ["kwh", "wh", "mwh"].contains(r.unit.lowercased())
    }

    /// The start of the interval `ts` falls in.
    public func intervalStart(_ ts: Date) -> Date {
        if seconds >= 86_400 {
            return LocalDay(containing: ts, in: zone).start(in: zone)
        }
        let t = ts.timeIntervalSince1970
        return Date(timeIntervalSince1970: (t / Double(seconds)).rounded(.down) * Double(seconds))
    }

    public mutating func add(_ r: StoredReading) -> [StoredReading] {
        // Readings as coarse as the target already, or of no fixed length, pass as they are.
        guard let own = ISODuration.seconds(r.reading.resolution), own < seconds else {
            return (finish().map { [$0] } ?? []) + [r]
        }
        let key = ReadingKey(series: r.reading.series, quantity: r.reading.quantity, ts: intervalStart(r.reading.ts))
        var done: [StoredReading] = []
        if let o = open, o.key == key {
            open = (key, o.first, o.sum + r.reading.value, o.count + 1, o.covered + own, Self.lower(o.quality, r.reading.quality), max(o.revision, r.revision), max(o.seq, r.seq))
            return []
        }
        if let finished = finish() { done.append(finished) }
        open = (key, r, r.reading.value, 1, own, r.reading.quality, r.revision, r.seq)
        return done
    }

    /// The interval still open, if any.
    public mutating func finish() -> StoredReading? {
        guard let o = open else { return nil }
        open = nil
        var reading = o.first.reading
        reading.ts = o.key.ts
        reading.resolution = ISODuration.text(seconds: seconds)
        reading.value = Self.isEnergy(reading) ? o.sum : o.sum / Double(o.count)
        reading.quality = o.quality
        if Self.isEnergy(reading), o.covered < length(from: o.key.ts) { reading.quality = Self.lower(reading.quality, .estimated) }
        reading.tags = [:]
        return StoredReading(reading: reading, revision: o.revision, seq: o.seq)
    }

    /// The seconds of the interval starting at `start` (a local day may have 23 or 25 hours).
    func length(from start: Date) -> Int {
        guard seconds >= 86_400 else { return seconds }
        let day = LocalDay(containing: start, in: zone)
        return Int(day.adding(days: seconds / 86_400).start(in: zone).timeIntervalSince(start))
    }

    /// The less trusted of two qualities (a sum with an estimate in it is an estimate).
    static func lower(_ a: Quality, _ b: Quality) -> Quality {
        a.rank < b.rank ? a : b
    }
}
