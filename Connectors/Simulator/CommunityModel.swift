import Foundation
import EnchufeCore

/// Synthetic households of an energy community: PV following the sun at a latitude, consumption
/// with daily and seasonal profiles, some with batteries and EV chargers. Every value is a pure
/// function of the seed, the household and the interval (batteries add state: their charge), so
/// the same interval always yields the same readings.
public struct CommunityModel: Sendable {
    public struct Household: Sendable, Equatable {
        public var cups: String
        public var pvKWp: Double  // 0: no PV
        public var baseLoadKW: Double
        public var batteryKWh: Double  // 0: no battery
        public var hasEV: Bool
    }

    /// One household's energy over one interval.
    public struct Interval: Sendable, Equatable {
        public var generationKWh: Double
        public var loadKWh: Double
        /// Energy taken from the grid.
        public var importKWh: Double
        /// Energy fed into the grid.
        public var exportKWh: Double
        /// Battery charge at the end of the interval, percent (nil: no battery).
        public var socPercent: Double?
    }

    public let seed: UInt64
    public let latitude: Double
    public let longitude: Double
    public let households: [Household]
    let zone = TimeZone(identifier: "Europe/Madrid")!

    public init(seed: UInt64, households count: Int, latitude: Double, longitude: Double = -3.7, pvShare: Double = 0.6, batteryShare: Double = 0.3, evShare: Double = 0.2) {
        self.seed = seed
        self.latitude = latitude
        self.longitude = longitude
        households = (0..<count).map { i in
            let r = { (salt: UInt64) in Random.unit(seed, UInt64(i), salt) }
            let hasPV = r(1) < pvShare
            return Household(
                cups: CUPS.make(distributor: "0021", number: seed &* 1_000_003 &+ UInt64(i)),
                pvKWp: hasPV ? (2 + 4 * r(2)).rounded(toPlaces: 1) : 0,
                baseLoadKW: 0.12 + 0.25 * r(3),
                batteryKWh: hasPV && r(4) < batteryShare / max(pvShare, 0.01) ? [5, 7.5, 10][Int(r(5) * 3) % 3] : 0,
                hasEV: r(6) < evShare)
        }
    }

    /// The battery charge every battery starts with, percent.
    public static let initialSoC = 50.0

    /// Energy of every household over `[start, start + seconds)`; `soc` carries battery charge (percent)
    /// from one interval to the next.
    public func step(start: Date, seconds: Double, soc: inout [Double]) -> [Interval] {
        if soc.count != households.count { soc = Array(repeating: Self.initialSoC, count: households.count) }
        let hours = seconds / 3600
        let mid = start.addingTimeInterval(seconds / 2)
        let sun = solarElevationSine(at: mid)
        let day = UInt64(max(0, Int(start.timeIntervalSince1970 / 86400)))
        let slot = UInt64(max(0, Int(start.timeIntervalSince1970 / max(seconds, 1))))
        let localHour = localHourOfDay(mid)
        let weekend = isWeekend(mid)
        let season = 1 + 0.3 * cos(2 * .pi * (Double(dayOfYear(mid)) - 15) / 365)

        return households.indices.map { i in
            let h = households[i]
            // Weather: one cloudiness per day for the whole community, a little flicker per household.
            let clouds = 0.35 + 0.65 * Random.unit(seed, day, 100)
            let flicker = 0.9 + 0.2 * Random.unit(seed, slot, UInt64(i) &+ 200)
            let pvKW = h.pvKWp * pow(max(0, sun), 1.2) * 0.85 * clouds * flicker
            var loadKW = h.baseLoadKW * season * (0.85 + 0.3 * Random.unit(seed, slot, UInt64(i) &+ 300))
            loadKW += 0.9 * bump(localHour, at: weekend ? 10 : 7.5, width: 1.2)
            loadKW += 1.4 * bump(localHour, at: 21, width: 1.8)
            loadKW += 0.4 * bump(localHour, at: 14.5, width: 1.0)
            if h.hasEV, Random.unit(seed, day, UInt64(i) &+ 400) < 0.5, (1.0..<4.0).contains(localHour) {
                loadKW += 7.4
            }
            let generation = pvKW * hours
            let load = loadKW * hours
            var net = load - generation  // > 0: deficit
            var socOut: Double?
            if h.batteryKWh > 0 {
                var stored = soc[i] / 100 * h.batteryKWh
                let maxEnergy = 3.0 * hours  // 3 kW inverter
                if net < 0 {
                    let charge = min(-net, maxEnergy, h.batteryKWh - stored)
                    stored += charge * 0.95
                    net += charge
                } else {
                    let discharge = min(net, maxEnergy, stored - 0.1 * h.batteryKWh)
                    if discharge > 0 {
                        stored -= discharge
                        net -= discharge
                    }
                }
                soc[i] = min(100, max(0, stored / h.batteryKWh * 100))
                socOut = soc[i].rounded(toPlaces: 1)
            }
            return Interval(
                generationKWh: generation.rounded(toPlaces: 4), loadKWh: load.rounded(toPlaces: 4),
                importKWh: max(0, net).rounded(toPlaces: 4), exportKWh: max(0, -net).rounded(toPlaces: 4),
                socPercent: socOut)
        }
    }

    /// Sine of the sun's elevation (negative at night), from the date and the place.
    func solarElevationSine(at date: Date) -> Double {
        let doy = Double(dayOfYear(date))
        let declination = 23.44 * .pi / 180 * sin(2 * .pi * (284 + doy) / 365)
        let b = 2 * .pi * (doy - 81) / 364
        let equationOfTimeMinutes = 9.87 * sin(2 * b) - 7.53 * cos(b) - 1.5 * sin(b)
        let utcHours = date.timeIntervalSince1970.truncatingRemainder(dividingBy: 86400) / 3600
        let solarHours = utcHours + longitude / 15 + equationOfTimeMinutes / 60
        let hourAngle = (solarHours - 12) * 15 * .pi / 180
        let phi = latitude * .pi / 180
        return sin(phi) * sin(declination) + cos(phi) * cos(declination) * cos(hourAngle)
    }

    private func bump(_ hour: Double, at center: Double, width: Double) -> Double {
        let d = hour - center
        return exp(-(d * d) / (2 * width * width))
    }

    private func localHourOfDay(_ date: Date) -> Double {
        let local = date.timeIntervalSince1970 + Double(zone.secondsFromGMT(for: date))
        return local.truncatingRemainder(dividingBy: 86400) / 3600
    }

    private func isWeekend(_ date: Date) -> Bool {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        return calendar.isDateInWeekend(date)
    }

    private func dayOfYear(_ date: Date) -> Int {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        return calendar.ordinality(of: .day, in: .year, for: date) ?? 1
    }
}

/// SplitMix64 over the inputs: a stateless, reproducible source of numbers in [0, 1).
enum Random {
    static func unit(_ a: UInt64, _ b: UInt64, _ c: UInt64) -> Double {
        var x = a &* 0x9E37_79B9_7F4A_7C15 ^ b &* 0xBF58_476D_1CE4_E5B9 ^ c &* 0x94D0_49BB_1331_11EB
        x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
        x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
        x ^= x >> 31
        return Double(x >> 11) / Double(1 << 53)
    }
}

extension Double {
    func rounded(toPlaces places: Int) -> Double {
        let f = pow(10, Double(places))
        return (self * f).rounded() / f
    }
}
