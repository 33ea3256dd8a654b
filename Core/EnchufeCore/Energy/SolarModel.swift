import Foundation

/// The physics from a weather forecast to a PV system's AC power, a documented chain of published
/// models (docs/forecasts.md), each step a plain function so that it is checked on its own:
/// solar position → clear-sky irradiance → cloud cover → decomposition → transposition → cell
/// temperature → DC power → inverter. Angles in degrees, irradiance in W/m², power in W.
public enum SolarModel {
    static func rad(_ degrees: Double) -> Double { degrees * .pi / 180 }
    static func deg(_ radians: Double) -> Double { radians * 180 / .pi }
    static func sind(_ d: Double) -> Double { sin(rad(d)) }
    static func cosd(_ d: Double) -> Double { cos(rad(d)) }

    public struct Position: Sendable, Equatable {
        /// Geometric zenith (no refraction).
        public var zenith: Double
        /// Zenith as seen through the atmosphere (refraction applied).
        public var apparentZenith: Double
        /// From north, eastward.
        public var azimuth: Double
        public var apparentElevation: Double { 90 - apparentZenith }
    }

    /// The sun's topocentric position: Meeus' solar coordinates (Astronomical Algorithms, 2nd ed.,
    /// ch. 25: geometric mean longitude, mean anomaly, equation of the centre, nutation from the
    /// four largest terms of ch. 22, aberration), apparent sidereal time (ch. 12), the parallax of
    /// the sun's distance (ch. 40), and the refraction of NREL's SPA (Reda and Andreas 2004, eq.
    /// 42) at `pressure` (Pa) and `temperature` (°C). Within 0.009° of SPA over a year at Spanish
    /// latitudes (`SolarModelTests`, against pvlib's SPA).
    public static func position(at date: Date, latitude: Double, longitude: Double, pressure: Double = 101_325, temperature: Double = 12) -> Position {
        let jd = date.timeIntervalSince1970 / 86_400 + 2_440_587.5
        let t = (jd - 2_451_545) / 36_525
        let l0 = 280.46646 + 36_000.76983 * t + 0.0003032 * t * t
        let m = 357.52911 + 35_999.05029 * t - 0.0001537 * t * t
        let e = 0.016708634 - 0.000042037 * t - 0.0000001267 * t * t
        let c = (1.914602 - 0.004817 * t - 0.000014 * t * t) * sind(m) + (0.019993 - 0.000101 * t) * sind(2 * m) + 0.000289 * sind(3 * m)
        let trueLongitude = l0 + c
        let distance = 1.000001018 * (1 - e * e) / (1 + e * cosd(m + c))  // AU
        // Nutation in longitude and obliquity (arc seconds → degrees).
        let node = 125.04452 - 1934.136261 * t
        let sunL = 280.4665 + 36_000.7698 * t, moonL = 218.3165 + 481_267.8813 * t
        let dPsi = (-17.20 * sind(node) - 1.32 * sind(2 * sunL) - 0.23 * sind(2 * moonL) + 0.21 * sind(2 * node)) / 3600
        let dEps = (9.20 * cosd(node) + 0.57 * cosd(2 * sunL) + 0.10 * cosd(2 * moonL) - 0.09 * cosd(2 * node)) / 3600
        let apparentLongitude = trueLongitude + dPsi - 20.4898 / 3600 / distance
        let eps = 23 + 26.0 / 60 + 21.448 / 3600 - (46.8150 * t + 0.00059 * t * t - 0.001813 * t * t * t) / 3600 + dEps
        let declination = asin(sind(eps) * sind(apparentLongitude))
        let rightAscension = atan2(cosd(eps) * sind(apparentLongitude), cosd(apparentLongitude))
        let siderealTime = 280.46061837 + 360.98564736629 * (jd - 2_451_545) + 0.000387933 * t * t - t * t * t / 38_710_000 + dPsi * cosd(eps)
        let hourAngle = rad(siderealTime + longitude) - rightAscension
        // Parallax (the observer on the surface, not at the Earth's centre).
        let phi = rad(latitude)
        let xi = rad(8.794 / 3600 / distance)
        let u = atan(0.99664719 * tan(phi))
        let x = cos(u), y = 0.99664719 * sin(u)
        let dAlpha = atan2(-x * sin(xi) * sin(hourAngle), cos(declination) - x * sin(xi) * cos(hourAngle))
        let topoDeclination = atan2((sin(declination) - y * sin(xi)) * cos(dAlpha), cos(declination) - x * sin(xi) * cos(hourAngle))
        let h = hourAngle - dAlpha
        let cosZenith = sin(phi) * sin(topoDeclination) + cos(phi) * cos(topoDeclination) * cos(h)
        let zenith = deg(acos(max(-1, min(1, cosZenith))))
        var azimuth = deg(atan2(sin(h), cos(h) * sin(phi) - tan(topoDeclination) * cos(phi))) + 180
        azimuth = azimuth.truncatingRemainder(dividingBy: 360)
        let elevation = 90 - zenith
        var refraction = 0.0
        if elevation >= -(0.26667 + 0.5667) {
            refraction = (pressure / 100 / 1010) * (283 / (273 + temperature)) * 1.02 / (60 * tan(rad(elevation + 10.3 / (elevation + 5.11))))
        }
        return Position(zenith: zenith, apparentZenith: 90 - (elevation + refraction), azimuth: azimuth)
    }

    /// Air pressure at an altitude (m) in the standard atmosphere (Pa).
    public static func pressure(altitude: Double) -> Double {
        100 * pow((44_331.514 - altitude) / 11_880.516, 1 / 0.1902632)
    }

    /// The sun's irradiance outside the atmosphere on a plane facing it (Spencer 1971), by day of
    /// the year (1–366), with a solar constant of 1366.1 W/m².
    public static func extraterrestrial(dayOfYear: Int) -> Double {
        let b = 2 * Double.pi * Double(dayOfYear - 1) / 365
        return 1366.1 * (1.00011 + 0.034221 * cos(b) + 0.00128 * sin(b) + 0.000719 * cos(2 * b) + 0.000077 * sin(2 * b))
    }

    public struct Irradiance: Sendable, Equatable {
        public var ghi: Double
        public var dni: Double
        public var dhi: Double
    }

    /// Clear-sky irradiance by the simplified Solis model (Ineichen, "A broadband simplified version
    /// of the Solis clear sky model", Solar Energy 82, 2008): aerosol optical depth at 700 nm,
    /// precipitable water (cm), pressure (Pa). Nothing below the horizon.
    public static func clearSky(apparentElevation: Double, aod700: Double = 0.1, water: Double = 1.0, pressure: Double = 101_325, extraterrestrial: Double) -> Irradiance {
        guard apparentElevation > 0 else { return Irradiance(ghi: 0, dni: 0, dhi: 0) }
        let w = max(water, 0.2), a = aod700
        let lp = log(pressure / 101_325), lw = log(w)
        let i0 = extraterrestrial * (0.12 * pow(w, 0.56) * a * a + 0.97 * pow(w, 0.032) * a + 1.08 * pow(w, 0.0051) + 0.071 * lp)
        let s = sind(apparentElevation)
        let taub = (1.82 + 0.056 * lw + 0.0071 * lw * lw) * a + (0.33 + 0.045 * lw + 0.0096 * lw * lw) + (0.0089 * w + 0.13) * lp
        let b = (0.00925 * a * a + 0.0148 * a - 0.0172) * lw + (-0.7565 * a * a + 0.5057 * a + 0.4557)
        let taug = (1.24 + 0.047 * lw + 0.0061 * lw * lw) * a + (0.27 + 0.043 * lw + 0.0090 * lw * lw) + (0.0079 * w + 0.1) * lp
        let g = -0.0147 * lw - 0.3079 * a * a + 0.2846 * a + 0.3798
        let td: (Double, Double, Double, Double, Double, Double)
        if a < 0.05 {
            td = (86 * w - 13_800, -3.11 * w + 79.4, -0.23 * w + 74.8, 0.092 * w - 8.86, 0.0042 * w + 3.12, -0.83 * pow(1 + a, -17.2))
        } else {
            td = (-0.21 * w + 11.6, 0.27 * w - 20.7, -0.134 * w + 15.5, 0.0554 * w - 5.71, 0.0057 * w + 2.94, -0.71 * pow(1 + a, -15.0))
        }
        let taud = td.0 * pow(a, 4) + td.1 * pow(a, 3) + td.2 * a * a + td.3 * a + td.4 + td.5 * lp
        let d = -0.337 * a * a + 0.63 * a + 0.116 + lp / (18 + 152 * a)
        return Irradiance(
            ghi: i0 * exp(-taug / pow(s, g)) * s, dni: i0 * exp(-taub / pow(s, b)), dhi: i0 * exp(-taud / pow(s, d)))
    }

    /// Global irradiance under a cloud cover (0–1, oktas / 8) from the clear-sky one: Kasten and
    /// Czeplak, "Solar and terrestrial radiation dependent on the amount and type of cloud", Solar
    /// Energy 24, 1980: GHI = GHI_clear · (1 − 0.75 · N^3.4).
    public static func cloudy(clearGHI: Double, cloud: Double) -> Double {
        clearGHI * (1 - 0.75 * pow(max(0, min(1, cloud)), 3.4))
    }

    /// Direct and diffuse parts of the global irradiance (Erbs, Klein and Duffie, Solar Energy 28,
    /// 1982), from the clearness index (the cosine of the zenith held at 0.065 or more); beyond 87°
    /// of zenith everything is diffuse.
    public static func erbs(ghi: Double, zenith: Double, extraterrestrial: Double) -> Irradiance {
        let kt = max(0, min(1, ghi / (extraterrestrial * max(cosd(zenith), 0.065))))
        let fraction: Double
        if kt <= 0.22 {
            fraction = 1 - 0.09 * kt
        } else if kt <= 0.8 {
            fraction = 0.9511 - 0.1604 * kt + 4.388 * kt * kt - 16.638 * pow(kt, 3) + 12.336 * pow(kt, 4)
        } else {
            fraction = 0.165
        }
        let dhi = fraction * ghi
        let dni = (ghi - dhi) / cosd(zenith)
        if zenith > 87 || ghi < 0 || dni < 0 { return Irradiance(ghi: ghi, dni: 0, dhi: ghi) }
        return Irradiance(ghi: ghi, dni: dni, dhi: dhi)
    }

    /// Irradiance on a tilted plane: the beam, the sky's diffuse by Hay and Davies (1980: a
    /// circumsolar part in proportion to DNI over the extraterrestrial irradiance, the rest
    /// isotropic) and the ground's reflection.
    public static func planeOfArray(
        _ sky: Irradiance, zenith: Double, azimuth: Double, tilt: Double, panelAzimuth: Double, albedo: Double, extraterrestrial: Double
    ) -> Double {
        let projection = max(-1, min(1, cosd(tilt) * cosd(zenith) + sind(tilt) * sind(zenith) * cosd(azimuth - panelAzimuth)))
        let beam = max(sky.dni * projection, 0)
        let rb = max(projection, 0) / max(cosd(zenith), 0.01745)
        let ai = sky.dni / extraterrestrial
        let diffuse = max(sky.dhi * (1 - ai) * 0.5 * (1 + cosd(tilt)), 0) + max(sky.dhi * ai * rb, 0)
        let ground = sky.ghi * albedo * (1 - cosd(tilt)) / 2
        return beam + diffuse + ground
    }

    /// Cell temperature (Faiman 2008, the coefficients of IEC 61853-2's default: U0 = 25 W/m²K,
    /// U1 = 6.84 W·s/m³K).
    public static func cellTemperature(planeOfArray: Double, air: Double, wind: Double) -> Double {
        air + planeOfArray / (25.0 + 6.84 * wind)
    }
}

/// A PV system and its AC power by the chain of `SolarModel`, PVWatts for the DC power and the
/// inverter (Dobos, "PVWatts Version 5 Manual", NREL/TP-6A20-62641, 2014: η_nom 0.96, η_ref 0.9637).
public struct PVSystem: Sendable, Hashable {
    public var kwp: Double
    public var tilt: Double
    /// Of the panels' facing, from north eastward (180: south).
    public var azimuth: Double
    /// System losses besides the inverter's (PVWatts' default 14 %).
    public var losses: Double
    public var inverterKW: Double
    public var latitude: Double
    public var longitude: Double
    public var altitude: Double
    /// Power temperature coefficient, per °C (PVWatts' standard module: −0.37 %/°C).
    public var gamma: Double
    public var albedo: Double

    public init(
        kwp: Double, tilt: Double = 30, azimuth: Double = 180, losses: Double = 0.14, inverterKW: Double? = nil, latitude: Double,
        longitude: Double, altitude: Double = 0, gamma: Double = -0.0037, albedo: Double = 0.2
    ) {
        self.kwp = kwp
        self.tilt = tilt
        self.azimuth = azimuth
        self.losses = losses
        self.inverterKW = inverterKW ?? kwp
        self.latitude = latitude
        self.longitude = longitude
        self.altitude = altitude
        self.gamma = gamma
        self.albedo = albedo
    }

    public struct Weather: Sendable, Equatable {
        /// Cloud cover, 0–1.
        public var cloud: Double
        /// Air temperature, °C.
        public var temperature: Double
        /// Wind speed, m/s.
        public var wind: Double

        public init(cloud: Double, temperature: Double, wind: Double) {
            self.cloud = cloud
            self.temperature = temperature
            self.wind = wind
        }
    }

    /// AC power (W) at an instant.
    public func acPower(at date: Date, _ weather: Weather) -> Double {
        let pressure = SolarModel.pressure(altitude: altitude)
        let sun = SolarModel.position(at: date, latitude: latitude, longitude: longitude, pressure: pressure)
        guard sun.apparentElevation > 0 else { return 0 }
        let day = LocalDay.calendar(.gmt).ordinality(of: .day, in: .year, for: date) ?? 1
        let outside = SolarModel.extraterrestrial(dayOfYear: day)
        let clear = SolarModel.clearSky(apparentElevation: sun.apparentElevation, pressure: pressure, extraterrestrial: outside)
        let sky = SolarModel.erbs(ghi: SolarModel.cloudy(clearGHI: clear.ghi, cloud: weather.cloud), zenith: sun.apparentZenith, extraterrestrial: outside)
        let poa = SolarModel.planeOfArray(
            sky, zenith: sun.apparentZenith, azimuth: sun.azimuth, tilt: tilt, panelAzimuth: azimuth, albedo: albedo, extraterrestrial: outside)
        let cell = SolarModel.cellTemperature(planeOfArray: poa, air: weather.temperature, wind: weather.wind)
        let dc = poa / 1000 * kwp * 1000 * (1 + gamma * (cell - 25)) * (1 - losses)
        return inverter(dc)
    }

    /// PVWatts' inverter: efficiency by load, output capped at the inverter's rating.
    func inverter(_ dc: Double) -> Double {
        let pac0 = inverterKW * 1000
        let pdc0 = pac0 / 0.96
        guard dc != 0 else { return 0 }
        let zeta = dc / pdc0
        let eta = 0.96 / 0.9637 * (-0.0162 * zeta - 0.0059 / zeta + 0.9858)
        return max(0, min(pac0, eta * dc))
    }

    /// Energy (kWh) over an interval: the mean of the power at the middle of each 5 minutes, so
    /// that the hours of sunrise and sunset count the part of them the sun is up.
    public func energy(from start: Date, seconds: Int, _ weather: Weather) -> Double {
        let steps = max(1, seconds / 300)
        let step = Double(seconds) / Double(steps)
        var sum = 0.0
        for i in 0..<steps { sum += acPower(at: start.addingTimeInterval((Double(i) + 0.5) * step), weather) }
        return sum / Double(steps) / 1000 * Double(seconds) / 3600
    }
}

extension PVSystem {
    public struct Problem: Error, CustomStringConvertible {
        public var description: String
    }

    /// `{"kwp", "tilt", "azimuth", "losses", "inverter_kw", "latitude", "longitude", "altitude"}`:
    /// `kwp`, `latitude` and `longitude` required; losses as a fraction (0.14) or a percentage (14).
    public init(json: JSONValue) throws(Problem) {
        guard let fields = json.objectValue else { throw Problem(description: "pv must be an object: {\"kwp\", \"latitude\", \"longitude\", ...}") }
        let known: Set<String> = ["kwp", "tilt", "azimuth", "losses", "inverter_kw", "latitude", "longitude", "altitude"]
        if let unknown = fields.keys.sorted().first(where: { !known.contains($0) }) {
            throw Problem(description: "pv has an unknown field '\(unknown)' (fields: \(known.sorted().joined(separator: ", ")))")
        }
        func number(_ name: String, _ range: ClosedRange<Double>, required: Bool = false) throws(Problem) -> Double? {
            guard let v = fields[name], !v.isNull else {
                if required { throw Problem(description: "pv.\(name) is required") }
                return nil
            }
            guard let n = v.doubleValue, n.isFinite, range.contains(n) else {
                throw Problem(description: "pv.\(name) must be a number from \(range.lowerBound) to \(range.upperBound)")
            }
            return n
        }
        var losses = try number("losses", 0...99) ?? 0.14
        if losses >= 1 { losses /= 100 }
        self.init(
            kwp: try number("kwp", 0.01...100_000, required: true)!, tilt: try number("tilt", 0...90) ?? 30,
            azimuth: try number("azimuth", 0...360) ?? 180, losses: losses, inverterKW: try number("inverter_kw", 0.01...100_000),
            latitude: try number("latitude", -90...90, required: true)!, longitude: try number("longitude", -180...180, required: true)!,
            altitude: try number("altitude", -500...9000) ?? 0)
    }

    public var json: JSONValue {
        [
            "kwp": .number(kwp), "tilt": .number(tilt), "azimuth": .number(azimuth), "losses": .number(losses),
            "inverter_kw": .number(inverterKW), "latitude": .number(latitude), "longitude": .number(longitude), "altitude": .number(altitude),
        ]
    }
}
