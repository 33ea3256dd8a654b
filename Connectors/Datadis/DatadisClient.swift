import EnchufeCore
import Foundation
import HTTPPull
import Synchronization

/// The login of one Datadis account: the bearer JWT from the form login
/// (`POST /nikola-auth/tokens/login`, answered as bare text), reused until a few minutes before
/// its `exp`, shared by every node of the hub that uses the account.
public actor DatadisSession {
    private static let sessions = Mutex<[String: DatadisSession]>([:])

    /// The session of `username` at `base` (one per account and server in the process).
    public static func shared(base: String, username: String, password: Secret) -> DatadisSession {
        sessions.withLock { all in
            let key = base + "\u{0}" + username
            if let known = all[key] { return known }
            let session = DatadisSession(base: base, username: username, password: password)
            all[key] = session
            return session
        }
    }

    let base: String
    let username: String
    let password: Secret
    private var token: (value: String, renewAt: Date)?
    private var logins = 0

    init(base: String, username: String, password: Secret) {
        self.base = base
        self.username = username
        self.password = password
    }

    /// A valid token: the cached one, or a new login (`renew`: the cached one was refused).
    func bearer(_ client: PullClient, context: NodeContext, renew: Bool = false) async throws -> String {
        let now = context.clock.now()
        if !renew, let token, token.renewAt > now { return token.value }
        let url = try PullNodeOptions.url(base, "/nikola-auth/tokens/login")
        let answer = try await client.postForm(url, form: [("username", username), ("password", password.reveal())], context: context)
        let text = (answer.text ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty, !text.hasPrefix("<"), !text.hasPrefix("{"), !text.contains(" ") else {
            throw PullError(.upstream, status: answer.status, "the login answered no token (\(text.isEmpty ? "an empty body" : "a page"))")
        }
        let expires = Self.expiry(of: text) ?? now.addingTimeInterval(23 * 3600)
        token = (text, min(expires.addingTimeInterval(-300), now.addingTimeInterval(24 * 3600)))
        logins += 1
        context.logger.info("logged in to Datadis (token valid until \(ISO8601.string(expires)))")
        return text
    }

    /// Logins made so far (tests check that a token is reused).
    public var loginCount: Int { logins }

    /// The `exp` claim of a JWT, read without checking its signature (only to know when to renew).
    static func expiry(of jwt: String) -> Date? {
        let parts = jwt.split(separator: ".")
        guard parts.count >= 2 else { return nil }
        var base64 = parts[1].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard let data = Data(base64Encoded: base64), let claims = try? JSONValue.parse(String(decoding: data, as: UTF8.self)),
            let exp = claims["exp"]?.doubleValue
        else { return nil }
        return Date(timeIntervalSince1970: exp)
    }
}

/// Datadis' private API for one account: the token on every call (one new login after a 401),
/// `Accept: application/json` (without it Datadis answers 400), `Accept-Encoding: identity`, long
/// timeouts, `authorizedNif` for a third party's supplies. Data calls are never retried here: a
/// repeated query is refused for 24 hours (see `DatadisLedger`). Errors never carry the CUPS, the
/// NIF or the username (Datadis echoes them in its error bodies).
public struct DatadisClient: Sendable {
    public let data: PullClient
    public let login: PullClient
    public let session: DatadisSession
    public let base: String
    public let authorizedNIF: String?
    /// The `-v2` endpoints (the default) or the v1 ones.
    public let v2: Bool

    public init(data: PullClient, login: PullClient, session: DatadisSession, base: String, authorizedNIF: String?, v2: Bool = true) {
        self.v2 = v2
        self.data = data
        self.login = login
        self.session = session
        self.base = base
        self.authorizedNIF = authorizedNIF
    }

    /// A login answering HTTP 500 "Bad credentials" means refused credentials, not an outage.
    @Sendable static func loginErrorBody(_ json: JSONValue, status: Int) -> PullError? {
        let message = json["message"]?.stringValue ?? ""
        return message.lowercased().contains("bad credentials") ? PullError(.auth, status: status, "Datadis refused the username or password (Bad credentials)") : nil
    }

    /// The endpoint's name in the API version used (`get-supplies` → `get-supplies-v2`).
    public func endpoint(_ name: String) -> String { v2 ? name + "-v2" : name }

    /// GETs `/api-private/api/ENDPOINT` with `query` (and `authorizedNif`), as JSON.
    public func get(_ endpoint: String, query: [(String, String)], context: NodeContext) async throws -> JSONValue {
        var query = query
        if let authorizedNIF { query.append(("authorizedNif", authorizedNIF)) }
        let url = try PullNodeOptions.url(base, "/api-private/api/" + endpoint, query: query)
        let secrets = query.filter { ["cups", "authorizedNif"].contains($0.0) }.map(\.1) + [session.username]
        do {
            return try await call(url, renew: false, context: context)
        } catch let error as PullError where error.kind == .auth && error.status == 401 {
            context.logger.info("Datadis refused the token (401); logging in again")
            do { return try await call(url, renew: true, context: context) } catch let error as PullError { throw Self.redact(error, secrets) }
        } catch let error as PullError {
            throw Self.redact(error, secrets)
        }
    }

    private func call(_ url: URL, renew: Bool, context: NodeContext) async throws -> JSONValue {
        var headers = ["Accept": "application/json", "Accept-Encoding": "identity"]
        if context.cannedAnswers == nil {
            headers["Authorization"] = "Bearer " + (try await session.bearer(login, context: context, renew: renew))
        }
        return try await data.json(url, headers: headers, context: context) { $0 }
    }

    static func redact(_ error: PullError, _ secrets: [String]) -> PullError {
        var e = error
        for secret in secrets where secret.count >= 4 {
            e.message = e.message.replacingOccurrences(of: secret, with: "***")
            if secret.count >= 20 { e.message = e.message.replacingOccurrences(of: String(secret.prefix(20)), with: "***") }
        }
        return e
    }
}
