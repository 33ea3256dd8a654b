import Foundation

/// Supply point codes: `ES` + distributor (4 digits) + 12 digits + two control letters, and an
/// optional two-character border point (`0F`) that distributors' files want (22 characters).
public enum CUPS {
    static let letters = Array("TRWAGMYFPDXBNJZSQVHLCKE")

    public static func make(distributor: String, number: UInt64) -> String {
        let digits = distributor + String(format: "%012llu", number % 1_000_000_000_000)
        return "ES" + digits + controlLetters(digits)
    }

    /// The two control letters of a CUPS's 16 digits (the 16-digit number modulo 529, with the
    /// letter table of the Spanish DNI).
    public static func controlLetters(_ sixteenDigits: String) -> String {
        var remainder = 0
        for ch in sixteenDigits { remainder = (remainder * 10 + (ch.wholeNumberValue ?? 0)) % 529 }
        return String([letters[remainder / 23], letters[remainder % 23]])
    }

    /// 20 or 22 characters, `ES`, 16 digits and the control letters that match them.
    public static func isValid(_ cups: String) -> Bool {
        let chars = Array(cups)
        guard chars.count == 20 || chars.count == 22, cups.hasPrefix("ES") else { return false }
        let digits = String(chars[2..<18])
        guard digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return false }
        return String(chars[18..<20]) == controlLetters(digits)
    }

    /// The 22-character form: a 20-character CUPS with `borderPoint` appended.
    public static func full(_ cups: String, borderPoint: String = "0F") -> String {
        cups.count == 20 ? cups + borderPoint : cups
    }
}
