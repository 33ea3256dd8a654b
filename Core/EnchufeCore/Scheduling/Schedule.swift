import Foundation

/// When a `schedule` node fires: a cron expression or a fixed interval, in a time zone.
///
/// Daylight-saving rule (what cron users expect, as Vixie cron and systemd do it):
/// - a wall-clock time skipped by the spring change (02:30 on the last Sunday of March in
///   Europe/Madrid) fires once, at the first instant after the gap (03:00 local);
/// - a wall-clock time repeated by the autumn change fires once, at its first occurrence, unless
///   the hour field is `*`: jobs that run every hour (`*/15 * * * *`) keep their rhythm and fire in
///   both repetitions of the hour.
/// `every` intervals under a day fire on a grid of elapsed time aligned to the Unix epoch (every 15m
/// fires at :00, :15, :30, :45 in every Spanish zone; across a DST change the gap between fires stays
/// 15 minutes); whole days (`1d`, `2d`) fire at local midnight.
public enum Schedule: Sendable, Hashable {
    case cron(CronExpression, TimeZone)
    case every(Duration, TimeZone)

    /// The first fire strictly after `instant`.
    public func next(after instant: Date) -> Date {
        switch self {
        case .cron(let expression, let zone):
            return expression.next(after: instant, in: zone)
        case .every(let interval, let zone):
            let seconds = max(interval.seconds, 0.001)
            if seconds.truncatingRemainder(dividingBy: 86400) == 0 {
                return Self.nextLocalMidnight(after: instant, everyDays: Int(seconds / 86400), in: zone)
            }
            let t = instant.timeIntervalSince1970
            return Date(timeIntervalSince1970: (floor(t / seconds) + 1) * seconds)
        }
    }

    private static func nextLocalMidnight(after instant: Date, everyDays n: Int, in zone: TimeZone) -> Date {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        // Local midnights after `instant`; for several days, those whose day number (counted in UTC days
        // since the epoch) is a multiple of n, so the rhythm survives restarts.
        var day = calendar.startOfDay(for: instant)
        repeat {
            day = calendar.date(byAdding: .day, value: 1, to: day)!
        } while n > 1 && Int((day.timeIntervalSince1970 / 86400).rounded()) % n != 0
        return day
    }
}

extension CronExpression {
    /// The first instant strictly after `instant` at which the expression fires in `zone`.
    public func next(after instant: Date, in zone: TimeZone) -> Date {
        // Candidate wall-clock times are enumerated from two hours before the wall time of `instant`,
        // since an instant after it can have an earlier wall time when clocks go back.
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let wallStart = instant.timeIntervalSince1970 + Double(zone.secondsFromGMT(for: instant)) - 7200
        var best: Date?
        var day = calendar.startOfDay(for: Date(timeIntervalSince1970: wallStart))
        for _ in 0..<(366 * 8) {
            let c = calendar.dateComponents([.year, .month, .day, .weekday], from: day)
            if matches(year: c.year!, month: c.month!, day: c.day!, weekday: c.weekday! - 1) {
                for hour in hours {
                    for minute in minutes {
                        let wall = day.timeIntervalSince1970 + Double(hour * 3600 + minute * 60)
                        if wall < wallStart { continue }
                        if let b = best, wall > b.timeIntervalSince1970 + Double(zone.secondsFromGMT(for: b)) + 7200 {
                            return b
                        }
                        for candidate in Self.instants(ofWallTime: wall, in: zone, firstOnly: !everyHour) where candidate > instant {
                            if best == nil || candidate < best! { best = candidate }
                        }
                    }
                }
            }
            if let b = best, day.timeIntervalSince1970 > b.timeIntervalSince1970 + 86400 * 2 { return b }
            day = calendar.date(byAdding: .day, value: 1, to: day)!
        }
        return best ?? Date.distantFuture
    }

    /// The instants a local wall-clock time (seconds since the epoch, read as if UTC) stands for:
    /// one normally, two when clocks go back (only the first if `firstOnly`), and when clocks go
    /// forward past it, the first instant after the gap.
    static func instants(ofWallTime wall: Double, in zone: TimeZone, firstOnly: Bool) -> [Date] {
        let before = Double(zone.secondsFromGMT(for: Date(timeIntervalSince1970: wall - 86400)))
        let after = Double(zone.secondsFromGMT(for: Date(timeIntervalSince1970: wall + 86400)))
        var found: [Date] = []
        for offset in Set([before, after]).sorted(by: >) {
            let candidate = Date(timeIntervalSince1970: wall - offset)
            if Double(zone.secondsFromGMT(for: candidate)) == offset { found.append(candidate) }
        }
        found.sort()
        if !found.isEmpty { return firstOnly ? [found[0]] : found }
        // In a gap: the clock jumped from `before` to `after` somewhere between these two instants.
        var lo = wall - after, hi = wall - before
        while hi - lo > 1 {
            let mid = ((lo + hi) / 2).rounded(.down)
            if Double(zone.secondsFromGMT(for: Date(timeIntervalSince1970: mid))) == after { hi = mid } else { lo = mid }
        }
        return [Date(timeIntervalSince1970: hi)]
    }
}
