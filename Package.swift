// swift-tools-version:6.1
import PackageDescription

// scripts/fuzz builds with ENCHUFE_FUZZ=1 (and ENCHUFE_FUZZ_RUNTIME, libFuzzer's no-main runtime):
// the hub's own modules, which read data from outside, are then compiled with AddressSanitizer and
// libFuzzer's coverage (what Swift's -sanitize=fuzzer turns on), and the `enchufe-fuzz` executable
// exists. Dependencies are not instrumented. An ordinary build has no unsafe flags.
let fuzzing = Context.environment["ENCHUFE_FUZZ"] != nil
let fuzzFlags: [SwiftSetting] =
    fuzzing ? [.unsafeFlags(["-sanitize=address", "-sanitize-coverage=edge,trace-cmp,inline-8bit-counters,pc-table"])] : []
let fuzzTargets: [Target] =
    fuzzing
    ? [
        .executableTarget(
            name: "enchufe-fuzz", dependencies: ["FuzzTargets"], path: "Fuzz/enchufe-fuzz",
            swiftSettings: fuzzFlags + [.unsafeFlags(["-parse-as-library"])],
            linkerSettings: [.unsafeFlags(["-sanitize=address", Context.environment["ENCHUFE_FUZZ_RUNTIME"] ?? "", "-lstdc++"])])
    ] : []

let package = Package(
    name: "Enchufe",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "enchufe", targets: ["enchufe"]),
        .library(name: "EnchufeCore", targets: ["EnchufeCore"]),
        .library(name: "EnchufeCLI", targets: ["EnchufeCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
    ],
    targets: [
        // The runtime: flow model, loading and validation, engine, scheduling, store, HTTP.
        .target(
            name: "EnchufeCore",
            dependencies: [
                "CLua",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            path: "Core/EnchufeCore", swiftSettings: fuzzFlags
        ),
        // Lua 5.4 from the system (Debian liblua5.4-dev), for expressions and the `lua` node.
        .systemLibrary(name: "CLua", path: "Core/CLua", pkgConfig: "lua5.4", providers: [.apt(["liblua5.4-dev"])]),
        // The composition root: registers every node type and serves the CLI (a library, so that
        // another package can build a binary with more node types), and the executable.
        .executableTarget(name: "enchufe", dependencies: ["EnchufeCLI", "CJemalloc"], path: "Core/enchufe"),
        // jemalloc (Debian libjemalloc-dev) as the executable's allocator: glibc's malloc, with
        // messages made on one thread and freed on another, spent a third of the engine's time in
        // its arena locks and heap growth (bench/README.md). Vector ships jemalloc on Linux too.
        .systemLibrary(name: "CJemalloc", path: "Core/CJemalloc", pkgConfig: "jemalloc", providers: [.apt(["libjemalloc-dev"])]),
        .target(
            name: "EnchufeCLI",
            dependencies: [
                "EnchufeCore",
                "Simulator",
                "Postgres",
                "MQTT",
                "REData",
                "AEMET",
                "Datadis",
                "Markets",
                "Optimizer",
                "HTTPPull",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            path: "Core/EnchufeCLI"
        ),
        .target(name: "Simulator", dependencies: ["EnchufeCore"], path: "Connectors/Simulator"),
        // libmosquitto from the system (Debian libmosquitto-dev), for the MQTT connector.
        .systemLibrary(name: "CMosquitto", path: "Connectors/CMosquitto", pkgConfig: "libmosquitto", providers: [.apt(["libmosquitto-dev"])]),
        // zlib from the system (Debian zlib1g-dev): the CRC-32 of the MQTT journal's records.
        .systemLibrary(name: "CZlib", path: "Connectors/CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // MQTT devices: `mqtt.broker`, `mqtt.in`, `mqtt.out`, on libmosquitto.
        .target(
            name: "MQTT",
            dependencies: [
                "EnchufeCore", "CMosquitto", "CZlib",
                .product(name: "Logging", package: "swift-log"), .product(name: "Metrics", package: "swift-metrics"),
            ],
            path: "Connectors/MQTT", swiftSettings: fuzzFlags),
        // The HTTP layer of the pull connectors (REData, ESIOS, AEMET, Datadis), on AsyncHTTPClient.
        .target(
            name: "HTTPPull",
            dependencies: [
                "EnchufeCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            path: "Connectors/HTTPPull", swiftSettings: fuzzFlags),
        // Red Eléctrica: REData (apidatos.ree.es) and ESIOS.
        .target(name: "REData", dependencies: ["EnchufeCore", "HTTPPull"], path: "Connectors/REData", swiftSettings: fuzzFlags),
        // AEMET OpenData: station observations, municipality forecasts, daily climatology.
        .target(name: "AEMET", dependencies: ["EnchufeCore", "HTTPPull"], path: "Connectors/AEMET", swiftSettings: fuzzFlags),
        // Datadis: the distributors' smart-meter data (supplies, contracts, consumption, max power).
        .target(name: "Datadis", dependencies: ["EnchufeCore", "HTTPPull"], path: "Connectors/Datadis", swiftSettings: fuzzFlags),
        // The wholesale market: OMIE's day-ahead prices.
        .target(name: "Markets", dependencies: ["EnchufeCore", "HTTPPull"], path: "Connectors/Markets", swiftSettings: fuzzFlags),
        // GLPK (Debian libglpk-dev), the LP/MILP solver, and the node types that plan with it.
        .systemLibrary(name: "CGLPK", path: "Connectors/CGLPK", providers: [.apt(["libglpk-dev"])]),
        .target(name: "Optimizer", dependencies: ["EnchufeCore", "CGLPK"], path: "Connectors/Optimizer"),
        // The PostgreSQL store backend and the `postgres.sql` sink.
        .target(
            name: "Postgres",
            dependencies: [
                "EnchufeCore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "Connectors/Postgres"),

        // Benchmarks (bench/README.md): run by hand with bench/run, never as tests.
        .executableTarget(
            name: "enchufe-bench",
            dependencies: [
                "EnchufeCore", "Postgres", "MQTT", "Simulator", "Optimizer", "TestSupport", "CJemalloc", .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"), .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            path: "bench/Sources/enchufe-bench"),

        // What the fuzzer feeds (scripts/fuzz); its saved inputs also run as ordinary tests.
        .target(
            name: "FuzzTargets", dependencies: ["EnchufeCore", "MQTT", "REData", "AEMET", "Datadis", .product(name: "Logging", package: "swift-log")],
            path: "Fuzz/FuzzTargets", swiftSettings: fuzzFlags),
        .testTarget(name: "FuzzRegressionTests", dependencies: ["FuzzTargets"], path: "Tests/FuzzRegressionTests"),

        // Launchers of the real servers tests need (PostgreSQL, ...), on loopback in temporary directories.
        .target(
            name: "TestSupport", dependencies: ["EnchufeCore", .product(name: "Hummingbird", package: "hummingbird")], path: "Tests/TestSupport"),

        // Store conformance checks, written once and run against every store backend.
        .target(name: "StoreConformance", dependencies: ["EnchufeCore"], path: "Tests/StoreConformance"),
        .testTarget(
            name: "EnchufeCoreTests", dependencies: ["EnchufeCore", "StoreConformance", "TestSupport", .product(name: "GRDB", package: "GRDB.swift")], path: "Tests/EnchufeCoreTests",
            exclude: ["Flows", "Curves", "Tariffs", "Coefficients", "Plugins"]),
        .testTarget(name: "SimulatorTests", dependencies: ["Simulator", "TestSupport", .product(name: "Logging", package: "swift-log")], path: "Tests/SimulatorTests"),
        .testTarget(
            name: "CLITests", dependencies: ["enchufe", "EnchufeCLI", "MQTT", "TestSupport", .product(name: "Yams", package: "Yams")],
            path: "Tests/CLITests"),
        .testTarget(name: "HTTPPullTests", dependencies: ["HTTPPull", "TestSupport"], path: "Tests/HTTPPullTests"),
        .testTarget(
            name: "REDataTests", dependencies: ["REData", "TestSupport"], path: "Tests/REDataTests",
            resources: [.copy("Fixtures")]),
        .testTarget(
            name: "DatadisTests", dependencies: ["Datadis", "TestSupport"], path: "Tests/DatadisTests",
            resources: [.copy("Fixtures")]),
        .testTarget(
            name: "AEMETTests", dependencies: ["AEMET", "TestSupport"], path: "Tests/AEMETTests",
            resources: [.copy("Fixtures")]),
        .testTarget(name: "MarketsTests", dependencies: ["Markets", "TestSupport"], path: "Tests/MarketsTests"),
        .testTarget(name: "OptimizerTests", dependencies: ["Optimizer", "Simulator", "TestSupport"], path: "Tests/OptimizerTests"),
        .testTarget(name: "MQTTTests", dependencies: ["MQTT", "TestSupport", .product(name: "Logging", package: "swift-log")], path: "Tests/MQTTTests"),
        .testTarget(
            name: "PostgresTests", dependencies: ["Postgres", "StoreConformance", "TestSupport"], path: "Tests/PostgresTests"),
    ]
)

package.targets += fuzzTargets
