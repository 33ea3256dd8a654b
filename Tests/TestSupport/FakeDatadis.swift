import Foundation
import Synchronization

/// A local server answering like Datadis: a form login giving a JWT, the bearer checked on every
/// call, and Datadis' own rule — an identical query within 24 hours is answered 429 — so a client
/// that repeats itself is caught.
public final class FakeDatadis: Sendable {
    public struct State {
        public var tokens: [String: Date] = [:]  // token → valid until
        public var asked: [String: [Date]] = [:]  // query → when asked
        /// The hub's (virtual) time, for Datadis' 24-hour rule.
        public var now = Date()
        public var served429 = 0
        public var logins = 0
        public var tokenNumber = 0
    }

    public let state = Mutex(State())
    let password: String
    let supplies: String
    let contract: String
    /// The answer of a data call (path, parameters), or nil for the default.
    let answers: @Sendable (String, FixtureServer.Request) -> FixtureServer.Answer?
    /// Tokens expire this long after login.
    let tokenLife: TimeInterval

    /// `supplies` and `contract`: the rows `get-supplies-v2` and `get-contract-detail-v2` answer.
    public init(
        password: String = "secreto", tokenLife: TimeInterval = 86_400, supplies: String, contract: String = "[]",
        answers: @escaping @Sendable (String, FixtureServer.Request) -> FixtureServer.Answer? = { _, _ in nil }
    ) {
        self.supplies = supplies
        self.contract = contract
        self.password = password
        self.tokenLife = tokenLife
        self.answers = answers
    }

    public static func jwt(exp: Date, n: Int) -> String {
        func b64(_ s: String) -> String {
            Data(s.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        }
        return b64(#"{"alg":"HS512"}"#) + "." + b64(#"{"sub":"12345678Z","exp":\#(Int(exp.timeIntervalSince1970)),"n":\#(n)}"#) + ".c2ln"
    }

    public func handle(_ request: FixtureServer.Request) -> FixtureServer.Answer {
        if request.path == "/nikola-auth/tokens/login" {
            guard request.method == "POST", request.body == "username=12345678Z&password=\(password)" else {
                return .json(#"{"timestamp":"2023-12-11T23:18:37.513+0000","status":500,"error":"Internal Server Error","message":"Bad credentials","path":"/nikola-auth/tokens/login"}"#, status: 500)
            }
            let token = state.withLock { s -> String in
                s.logins += 1
                s.tokenNumber += 1
                let t = Self.jwt(exp: Date().addingTimeInterval(tokenLife), n: s.tokenNumber)
                s.tokens[t] = Date().addingTimeInterval(tokenLife)
                return t
            }
            return .init(headers: ["Content-Type": "text/plain;charset=UTF-8"], body: Array(token.utf8))
        }
        let bearer = request.headers["authorization"]?.replacingOccurrences(of: "Bearer ", with: "") ?? ""
        let valid = state.withLock { ($0.tokens[bearer] ?? .distantPast) > Date() }
        guard valid else {
            return .json(#"{"timestamp":"2026-09-30T00:22:50.912+0000","status":401,"error":"Unauthorized","message":"No message available","path":"\#(request.path)"}"#, status: 401)
        }
        guard request.headers["accept"] == "application/json" else { return .init(status: 400, body: Array("Parámetro en cabecera requerido en estado vacío".utf8)) }
        let endpoint = String(request.path.dropFirst("/api-private/api/".count))
        if endpoint.hasPrefix("get-consumption") || endpoint.hasPrefix("get-max-power") {
            let repeated = state.withLock { s -> Bool in
                let key = request.path + "?" + (request.query ?? "")
                let now = s.now
                let recent = s.asked[key, default: []].contains { now.timeIntervalSince($0) < 86_400 }
                s.asked[key, default: []].append(now)
                if recent { s.served429 += 1 }
                return recent
            }
            if repeated { return .init(status: 429, body: Array("Consulta ya realizada en las últimas 24 horas.".utf8)) }
        }
        if let answer = answers(endpoint, request) { return answer }
        switch endpoint {
        case "get-supplies-v2": return .json(#"{"supplies": \#(supplies), "distributorError": []}"#)
        case "get-contract-detail-v2": return .json(#"{"contract": \#(contract), "distributorError": []}"#)
        default: return .json(#"{"timeCurve": [], "distributorError": []}"#)
        }
    }

    public var served429: Int { state.withLock { $0.served429 } }
    public var logins: Int { state.withLock { $0.logins } }
}

