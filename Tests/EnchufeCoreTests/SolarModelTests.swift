import Foundation
import Testing

@testable import EnchufeCore

/// The solar model against pvlib (an oracle run by scripts/make-pv-reference, which wrote the
/// files in Solar/): positions against NREL's SPA, and a year of hourly AC energy of a 5 kWp
/// system at Madrid through the same chain of models on the same weather.
@Suite struct SolarModelTests {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Solar")
    static let madrid = (latitude: 40.4168, longitude: -3.7038, altitude: 650.0)

    /// The rows of a CSV file (comments and the header left out), split at commas.
    static func rows(_ name: String) throws -> [[Substring]] {
        let text = try String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8)
        return text.split(separator: "\n").filter { !$0.hasPrefix("#") }.dropFirst().map { $0.split(separator: ",") }
    }

    /// The angle between two directions of the sky.
    static func separation(_ z1: Double, _ a1: Double, _ z2: Double, _ a2: Double) -> Double {
        let r = Double.pi / 180
        let c = cos(z1 * r) * cos(z2 * r) + sin(z1 * r) * sin(z2 * r) * cos((a1 - a2) * r)
        return acos(min(1, c)) / r
    }

    @Test func thePositionIsWithinAHundredthOfADegreeOfSPAAllYear() throws {
        let pressure = SolarModel.pressure(altitude: Self.madrid.altitude)
        var worst = 0.0, worstApparent = 0.0, checked = 0
        for row in try Self.rows("solar-positions-madrid-2026.csv") {
            let ts = try #require(ISO8601.date(String(row[0])))
            let (zenith, apparent, azimuth) = (Double(row[1])!, Double(row[2])!, Double(row[3])!)
            guard zenith < 90 else { continue }
            let p = SolarModel.position(at: ts, latitude: Self.madrid.latitude, longitude: Self.madrid.longitude, pressure: pressure)
            worst = max(worst, Self.separation(p.zenith, p.azimuth, zenith, azimuth))
            worstApparent = max(worstApparent, abs(p.apparentZenith - apparent))
            checked += 1
        }
        print("solar position against SPA: \(checked) positions, worst \(worst)°, apparent zenith worst \(worstApparent)°")
        #expect(checked > 1000)
        #expect(worst <= 0.01)
        #expect(worstApparent <= 0.01)
    }

    @Test func aYearOfHourlyACEnergyMatchesPvlibOnTheSameWeather() throws {
        let system = PVSystem(
            kwp: 5, tilt: 30, azimuth: 180, losses: 0.14, inverterKW: 4.6, latitude: Self.madrid.latitude, longitude: Self.madrid.longitude,
            altitude: Self.madrid.altitude)
        var absolute = 0.0, ours = 0.0, theirs = 0.0, hours = 0
        for row in try Self.rows("pv-reference-madrid-2026.csv") {
            let ts = try #require(ISO8601.date(String(row[0])))
            let weather = PVSystem.Weather(cloud: Double(row[1])!, temperature: Double(row[2])!, wind: Double(row[3])!)
            let expected = Double(row[4])!
            let got = system.energy(from: ts, seconds: 3600, weather)
            absolute += abs(got - expected)
            ours += got
            theirs += expected
            hours += 1
        }
        let nmae = absolute / Double(hours) / system.kwp * 100
        let annual = (ours - theirs) / theirs * 100
        print("PV against pvlib: \(hours) hours, nMAE \(nmae) % of kWp, annual \(ours) kWh against \(theirs) kWh (\(annual) %)")
        #expect(hours == 8760)
        #expect(nmae <= 2)
        #expect(abs(annual) <= 1)
    }

    @Test func eachStepHasTheValuesOfItsPaper() {
        // Simplified Solis at 30° with the defaults (aod700 0.1, 1 cm of water, sea level), 1364 W/m².
        let clear = SolarModel.clearSky(apparentElevation: 30, extraterrestrial: 1364)
        #expect(abs(clear.ghi - 476.878) < 0.01 && abs(clear.dni - 779.566) < 0.01 && abs(clear.dhi - 93.880) < 0.01)
        #expect(SolarModel.clearSky(apparentElevation: -1, extraterrestrial: 1364) == .init(ghi: 0, dni: 0, dhi: 0))
        // Kasten–Czeplak: overcast keeps a quarter.
        #expect(SolarModel.cloudy(clearGHI: 800, cloud: 1) == 200 && SolarModel.cloudy(clearGHI: 800, cloud: 0) == 800)
        // Erbs: a clearness index of 0.1 is 99.1 % diffuse; above 0.8, 16.5 %.
        let dull = SolarModel.erbs(ghi: 136.61, zenith: 0, extraterrestrial: 1366.1)
        #expect(abs(dull.dhi / dull.ghi - 0.991) < 1e-9)
        let bright = SolarModel.erbs(ghi: 1200, zenith: 0, extraterrestrial: 1366.1)
        #expect(abs(bright.dhi - 0.165 * 1200) < 1e-9 && abs(bright.dni - 0.835 * 1200) < 1e-9)
        #expect(SolarModel.erbs(ghi: 10, zenith: 88, extraterrestrial: 1366.1).dni == 0)
        // A horizontal panel gets the global irradiance.
        let flat = SolarModel.planeOfArray(.init(ghi: 500, dni: 600, dhi: 100), zenith: 48.19, azimuth: 150, tilt: 0, panelAzimuth: 180, albedo: 0.2, extraterrestrial: 1366.1)
        #expect(abs(flat - (600 * cos(48.19 * .pi / 180) + 100)) < 1e-9)
        // Faiman: 1000 W/m² with no wind heats the cells 40 °C above the air.
        #expect(SolarModel.cellTemperature(planeOfArray: 1000, air: 20, wind: 0) == 60)
        #expect(abs(SolarModel.pressure(altitude: 0) - 101_325) < 1)
    }

    @Test func nightIsZeroAndTheCanariesHaveTheirOwnSunrise() {
        let madrid = PVSystem(kwp: 5, latitude: 40.4168, longitude: -3.7038)
        let canarias = PVSystem(kwp: 5, latitude: 28.1, longitude: -15.4)
        let clear = PVSystem.Weather(cloud: 0, temperature: 15, wind: 1)
        // 21 June 2026, 05:00 UTC: the sun has risen in Madrid (06:45 local) but not in Gran Canaria.
        let dawn = ISO8601.date("2026-06-21T05:30:00Z")!
        #expect(madrid.acPower(at: dawn, clear) > 0)
        #expect(canarias.acPower(at: dawn, clear) == 0)
        #expect(madrid.acPower(at: ISO8601.date("2026-06-21T23:00:00Z")!, clear) == 0)
        // The hour of sunrise is counted in part: between none and a full hour's worth.
        let sunriseHour = madrid.energy(from: ISO8601.date("2026-06-21T04:00:00Z")!, seconds: 3600, clear)
        let noonHour = madrid.energy(from: ISO8601.date("2026-06-21T12:00:00Z")!, seconds: 3600, clear)
        #expect(sunriseHour > 0 && sunriseHour < noonHour / 10)
        #expect(noonHour > 3 && noonHour <= 5)
    }
}
