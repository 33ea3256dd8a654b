import HTTPTypes
import Hummingbird
import NIOCore

/// The request context of the hub's routes: Hummingbird's, and the address of the peer.
public struct HubRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Who opened the connection (a reverse proxy, if there is one).
    public let peer: SocketAddress?
    let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        peer = source.channel.remoteAddress
        channel = source.channel
    }

    /// Stops reading the request: what the client still sends is dropped and the connection closes
    /// once the answer is written.
    func stopReading() {
        channel.close(mode: .input, promise: nil)
    }

    /// Closes the connection (a watcher that stopped reading).
    func closeConnection() {
        channel.close(promise: nil)
    }
}

/// When a request without a key is the machine's operator (every tenant's flows, dead letters,
/// taps, metrics). Deciding by the address the hub listens on was not enough: a web page the
/// operator opens could post to `127.0.0.1` (a simple request needs no CORS), a DNS-rebound name
/// could read, and a reverse proxy on the same host made every request look local. So it takes all of:
/// - the switch: on by default only when `--http` listens on loopback; `--require-keys` turns it off;
/// - the peer's address is loopback;
/// - the `Host` names this machine (`localhost`, `127.x.x.x`, `[::1]`): a rebound name is refused;
/// - no proxy header (`Forwarded`, `X-Forwarded-For`, `X-Real-IP`): a proxy's requests need keys;
/// - for a request that changes something, no sign of another site (`Origin` of another host, or
///   `Sec-Fetch-Site` other than `same-origin` or `none`).
public struct LocalAccess: Sendable {
    /// Whether keyless requests from this machine may be the operator at all.
    public var keyless: Bool
    /// Whether the hub listens on loopback only (what `auth: none` webhooks need).
    public var listensOnLoopback: Bool

    public init(host: String, requireKeys: Bool = false) {
        listensOnLoopback = Self.isLoopback(host: host)
        keyless = listensOnLoopback && !requireKeys
    }

    /// `localhost`, `127.x.x.x`, `::1`.
    public static func isLoopback(host: String) -> Bool {
        let h = host.lowercased()
        return h == "localhost" || h == "localhost." || h == "::1" || h == "[::1]" || h == "0:0:0:0:0:0:0:1" || h.hasPrefix("127.")
    }

    static let proxyHeaders = ["Forwarded", "X-Forwarded-For", "X-Real-IP", "X-Forwarded-Host"].compactMap { HTTPField.Name($0) }

    /// Whether the request came from this machine, names it, and passed no proxy.
    public func isLocal(_ request: Request, peer: SocketAddress?) -> Bool {
        guard let address = peer?.ipAddress, Self.isLoopback(host: address) || address.hasPrefix("::ffff:127.") else { return false }
        guard let authority = request.head.authority, Self.isLoopback(host: Self.hostName(authority)) else { return false }
        return !Self.proxyHeaders.contains { request.headers[$0] != nil }
    }

    /// Whether the request is the machine's operator: the switch on, no key given, and local.
    public func isOperator(_ request: Request, peer: SocketAddress?) -> Bool {
        keyless && request.headers[.authorization] == nil && isLocal(request, peer: peer) && (request.method == .get || !Self.fromAnotherSite(request))
    }

    /// Whether a browser says the request was made by a page of another site.
    public static func fromAnotherSite(_ request: Request) -> Bool {
        if let site = request.headers[HTTPField.Name("Sec-Fetch-Site")!], site != "same-origin", site != "none" { return true }
        guard let origin = request.headers[HTTPField.Name("Origin")!] else { return false }
        guard let authority = request.head.authority, let scheme = origin.range(of: "://") else { return true }
        return origin[scheme.upperBound...].lowercased() != authority.lowercased()
    }

    /// The host of a `Host` value: `127.0.0.1:8080` → `127.0.0.1`, `[::1]:8080` → `::1`.
    static func hostName(_ authority: String) -> String {
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            return String(authority[authority.index(after: authority.startIndex)..<close])
        }
        if authority.filter({ $0 == ":" }).count == 1, let colon = authority.firstIndex(of: ":") {
            return String(authority[..<colon])
        }
        return authority
    }
}
