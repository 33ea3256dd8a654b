import Foundation

/// Bytes of an HTTP answer as text: the `charset` of its `Content-Type` when it names one, otherwise
/// strict UTF-8, otherwise ISO-8859-15 (what AEMET sends, often without saying so).
public enum TextDecoding {
    public static func decode(_ bytes: [UInt8], contentType: String?) -> String? {
        if let charset = charset(of: contentType) {
            switch charset {
            case "utf-8", "utf8":
                return String(validating: bytes, as: UTF8.self)
            case "iso-8859-15", "latin-9", "latin9", "iso8859-15":
                return latin9(bytes)
            case "iso-8859-1", "latin1", "latin-1", "iso8859-1":
                return String(decoding: bytes.map { UInt16($0) }, as: UTF16.self)
            default:
                break  // an unknown charset: guess as when none is given
            }
        }
        return String(validating: bytes, as: UTF8.self) ?? latin9(bytes)
    }

    static func charset(of contentType: String?) -> String? {
        guard let contentType else { return nil }
        for parameter in contentType.split(separator: ";").dropFirst() {
            let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if pair.count == 2, pair[0].lowercased() == "charset" {
                return pair[1].trimmingCharacters(in: CharacterSet(charactersIn: "\"")).lowercased()
            }
        }
        return nil
    }

    /// ISO-8859-15: Latin-1 but for eight code points (the euro sign among them).
    static func latin9(_ bytes: [UInt8]) -> String {
        var scalars = String.UnicodeScalarView()
        for byte in bytes {
            let value: UInt32
            switch byte {
            case 0xA4: value = 0x20AC  // €
            case 0xA6: value = 0x0160  // Š
            case 0xA8: value = 0x0161  // š
            case 0xB4: value = 0x017D  // Ž
            case 0xB8: value = 0x017E  // ž
            case 0xBC: value = 0x0152  // Œ
            case 0xBD: value = 0x0153  // œ
            case 0xBE: value = 0x0178  // Ÿ
            default: value = UInt32(byte)
            }
            scalars.append(Unicode.Scalar(value)!)
        }
        return String(scalars)
    }
}
