import EnchufeCore

/// What this module adds to a build of the hub: the `postgres://` store and the `postgres.sql` sink.
public enum PostgresModule {
    public static let specs: [NodeSpec] = [PostgresSQLNode.spec]

    public static func register(in opener: inout StoreOpener) {
        for scheme in ["postgres", "postgresql"] {
            opener.register(scheme: scheme) { url in try PostgresStore(url: url) }
        }
    }
}
