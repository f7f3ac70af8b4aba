// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "flowchain",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "flowchain", targets: ["flowchain"]),
        .library(name: "FlowchainCrypto", targets: ["FlowchainCrypto"]),
        .library(name: "Ledger", targets: ["Ledger"]),
        .library(name: "FlowchainNode", targets: ["FlowchainNode"]),
        .library(name: "FlowchainTesting", targets: ["FlowchainTesting"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
    ],
    targets: [
        // C side
        .systemLibrary(
            name: "COpenSSL",
            path: "CShims/COpenSSL",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),

        // Pure logic
        .target(
            name: "FlowchainCrypto",
            dependencies: ["COpenSSL"]
        ),
        .target(
            name: "Ledger",
            dependencies: [
                "FlowchainCrypto",
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),

        // Wiring and the tool
        .target(
            name: "FlowchainNode",
            dependencies: [
                "FlowchainCrypto",
                "Ledger",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "flowchain",
            dependencies: [
                "FlowchainNode",
                "FlowchainBench",
                "Ledger",
                "FlowchainCrypto",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // `flowchain bench` scenarios
        .target(
            name: "FlowchainBench",
            dependencies: ["FlowchainCrypto", "Ledger"],
            path: "Benchmarks/FlowchainBench"
        ),

        // Shared test doubles and fixtures
        .target(
            name: "FlowchainTesting",
            dependencies: ["FlowchainCrypto", "Ledger"]
        ),

        .testTarget(name: "FlowchainCryptoTests", dependencies: ["FlowchainCrypto", "FlowchainTesting"]),
        .testTarget(name: "LedgerTests", dependencies: ["Ledger", "FlowchainCrypto", "FlowchainTesting"]),
        .testTarget(
            name: "EndToEndTests",
            dependencies: ["Ledger", "FlowchainCrypto", "FlowchainTesting", "flowchain"]
        ),
    ]
)
