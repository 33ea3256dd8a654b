import EnchufeCore
import Testing

@testable import Postgres

@Suite struct PostgresURLTests {
    @Test func urlsAreReadAsLibpqReadsThem() throws {
        let url = try PostgresURL("postgres://hub:p%40ss%3Aword@db.example:6543/enchufe?sslmode=require&pool_size=4&connect_timeout=2")
        #expect(url.host == "db.example")
        #expect(url.port == 6543)
        #expect(url.user == "hub")
        #expect(url.password == "p@ss:word")
        #expect(url.database == "enchufe")
        #expect(url.sslMode == "require")
        #expect(url.poolSize == 4)
        #expect(url.connectTimeout == 2)
        #expect(!url.display.contains("p%40ss"))

        let socket = try PostgresURL("postgresql://hub@/enchufe?host=/run/postgresql")
        #expect(socket.socketDirectory == "/run/postgresql")
        #expect(socket.address == "/run/postgresql/.s.PGSQL.5432")
        #expect(socket.password == nil)

        let defaults = try PostgresURL("postgres://localhost")
        #expect((defaults.user, defaults.database, defaults.sslMode, defaults.poolSize) == ("postgres", "postgres", "prefer", 10))
    }

    @Test func badURLsSayWhatIsWrongWithoutThePassword() {
        for (text, complaint) in [
            ("postgres://hub:s3cret@db/x?sslmode=always", "sslmode must be one of"),
            ("postgres://hub:s3cret@db/x?pool=3", "unknown parameter 'pool'"),
            ("postgres://hub:s3cret@db/x?pool_size=0", "pool_size must be at least 1"),
            ("mysql://hub:s3cret@db/x", "not a URL of the form postgres://"),
        ] {
            let message = #expect(throws: StoreError.self) { try PostgresURL(text) }.map { "\($0)" } ?? ""
            #expect(message.contains(complaint), "\(message)")
            #expect(!message.contains("s3cret"), "\(message)")
        }
    }
}
