// swift-tools-version:6.0
// An example of building an `enchufe` binary with more node types, from a package of your own:
// depend on Enchufe's `EnchufeCore` (the node API) and `EnchufeCLI` (the command line), write node
// types, and call `EnchufeCLI.main(extraNodeTypes:)` from your executable's main.swift.
import Foundation
import PackageDescription

// Enchufe is this repository, two folders up. A package depending on it by URL would write
// `.package(url: "https://github.com/…/enchufe", from: "0.1.0")` and `package: "enchufe"`.
let enchufePath = "../.."
let enchufe = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(enchufePath).standardized.lastPathComponent

let package = Package(
    name: "enchufe-solar",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: enchufePath)
    ],
    targets: [
        .target(name: "SolarNodes", dependencies: [.product(name: "EnchufeCore", package: enchufe)]),
        .executableTarget(name: "enchufe-solar", dependencies: ["SolarNodes", .product(name: "EnchufeCLI", package: enchufe)]),
        .testTarget(name: "SolarNodesTests", dependencies: ["SolarNodes", .product(name: "EnchufeCore", package: enchufe)]),
    ]
)
