// swift-tools-version:6.1
import PackageDescription

/// Upcoming language features every target of ours builds with (as Hummingbird does).
let upcoming: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny"), .enableUpcomingFeature("MemberImportVisibility")]

let package = Package(
    name: "flowchain",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "flowchain", targets: ["flowchain"]),
        .library(name: "FlowchainCrypto", targets: ["FlowchainCrypto"]),
        .library(name: "LedgerModel", targets: ["LedgerModel"]),
        .library(name: "Ledger", targets: ["Ledger"]),
        .library(name: "Consensus", targets: ["Consensus"]),
        .library(name: "Chord", targets: ["Chord"]),
        .library(name: "FlowchainWire", targets: ["FlowchainWire"]),
        .library(name: "FlowchainClient", targets: ["FlowchainClient"]),
        .library(name: "NodeServer", targets: ["NodeServer"]),
        .library(name: "MQTTBridge", targets: ["MQTTBridge"]),
        .library(name: "Sensors", targets: ["Sensors"]),
        .library(name: "PeerNetwork", targets: ["PeerNetwork"]),
        .library(name: "FlowchainNode", targets: ["FlowchainNode"]),
        .library(name: "FlowchainTesting", targets: ["FlowchainTesting"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.0", traits: []),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.8.0"),
        .package(url: "https://github.com/hummingbird-project/swift-websocket", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        // Test-only: an independent arbitrary-precision reference for the ring arithmetic.
        .package(url: "https://github.com/attaswift/BigInt", from: "6.0.0"),
    ],
    targets: [
        // C side
        .systemLibrary(
            name: "COpenSSL",
            path: "CShims/COpenSSL",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),

        .systemLibrary(
            name: "CSodium",
            path: "CShims/CSodium",
            pkgConfig: "libsodium",
            providers: [.apt(["libsodium-dev"])]
        ),

        .systemLibrary(
            name: "CMosquitto",
            path: "CShims/CMosquitto",
            pkgConfig: "libmosquitto",
            providers: [.apt(["libmosquitto-dev"])]
        ),

        .systemLibrary(
            name: "CGPIOD",
            path: "CShims/CGPIOD",
            pkgConfig: "libgpiod",
            providers: [.apt(["libgpiod-dev"])]
        ),
        // One C API over libgpiod 1.6 and 2.x (chosen from the installed gpiod.h); also built into
        // the C sensor agent. Its own C tests: scripts/test-c-shims.
        .target(
            name: "CFlowchainIO",
            dependencies: ["CGPIOD"],
            path: "CShims/CFlowchainIO",
            exclude: ["tests"],
            sources: ["fio_gpio.c", "fio_sysfs.c"],
            publicHeadersPath: "include"
        ),

        // The kernel's view of the system clock (adjtimex): whether what the node stamps is synchronised.
        .target(
            name: "CClock",
            path: "CShims/CClock",
            sources: ["clock.c"],
            publicHeadersPath: "include"
        ),

        // Pure logic
        .target(
            name: "FlowchainCrypto",
            dependencies: ["COpenSSL", "CSodium"]
        ),
        .target(
            name: "LedgerModel",
            dependencies: ["FlowchainCrypto"]
        ),
        .target(
            name: "Ledger",
            dependencies: [
                "CClock",
                "FlowchainCrypto",
                "LedgerModel",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),

        .target(
            name: "Consensus",
            dependencies: ["FlowchainCrypto", "LedgerModel"]
        ),

        .target(
            name: "Chord",
            dependencies: ["FlowchainCrypto"]
        ),

        // The JSON shapes every side shares (readings, blocks, JSON-RPC messages): Foundation only
        .target(
            name: "FlowchainWire",
            dependencies: ["FlowchainCrypto", "LedgerModel"]
        ),

        // The JSON-RPC client over WebSocket (the CLI and other Swift programs)
        .target(
            name: "FlowchainClient",
            dependencies: [
                "FlowchainWire",
                .product(name: "WSClient", package: "swift-websocket"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // Hummingbird: the Web-of-Things device server, JSON-RPC, dashboard, health, metrics
        .target(
            name: "NodeServer",
            dependencies: [
                "FlowchainCrypto",
                "Ledger",
                "FlowchainWire",
                "ProcessSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            resources: [.copy("Dashboard/Resources")]
        ),

        // MQTT through libmosquitto: the client, bridge rules, outbox
        .target(
            name: "MQTTBridge",
            dependencies: [
                "CMosquitto", "Ledger", "FlowchainWire",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),

        // The peer network: the /peer transport and its handshake, routing, replication (issue 13)
        .target(
            name: "PeerNetwork",
            dependencies: [
                "Chord", "Consensus", "FlowchainCrypto", "FlowchainWire", "Ledger",
                .product(name: "WSClient", package: "swift-websocket"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),

        // The node's own sensors: GPIO (through CFlowchainIO), Linux IIO and 1-Wire, and the sampler
        .target(
            name: "Sensors",
            dependencies: [
                "CFlowchainIO", "Ledger", "FlowchainWire",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),

        // Wiring and the tool
        .target(
            name: "FlowchainNode",
            dependencies: [
                "FlowchainCrypto",
                "Ledger",
                "Consensus",
                "NodeServer",
                "FlowchainWire",
                "MQTTBridge",
                "Sensors",
                "PeerNetwork",
                "Chord",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .executableTarget(
            name: "flowchain",
            dependencies: [
                "FlowchainNode",
                "FlowchainBench",
                "NodeServer",
                "MQTTBridge",
                "Sensors",
                "FlowchainClient",
                "FlowchainWire",
                "Consensus",
                "Chord",
                "PeerNetwork",
                "Ledger",
                "FlowchainCrypto",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // docs/embedding.md's example: a node inside another Swift program
        .executableTarget(
            name: "embedding-example",
            dependencies: ["FlowchainNode", "Ledger", .product(name: "Logging", package: "swift-log")],
            path: "docs/examples/embedding"
        ),

        // The bare dependency stack, the reference for the node's idle memory in `flowchain bench rpc`
        .executableTarget(
            name: "stack-probe",
            dependencies: [
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
            ],
            path: "Benchmarks/StackProbe"
        ),

        // Runs inside the VM of scripts/vm-gpio-test against a kernel gpio-sim chip
        .executableTarget(
            name: "gpio-vm-probe",
            dependencies: ["Sensors", "Ledger", "FlowchainCrypto"],
            path: "Tests/VM/Probe"
        ),

        // `flowchain bench` scenarios
        .target(
            name: "FlowchainBench",
            dependencies: [
                "FlowchainCrypto", "Ledger", "Consensus", "Chord", "NodeServer", "FlowchainWire", "FlowchainClient", "ProcessSupport", "MQTTBridge", "Sensors",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "WSClient", package: "swift-websocket"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/FlowchainBench"
        ),

        // Child processes (launch, /proc figures) and raw loopback HTTP: for the tests and `flowchain bench`
        .target(name: "ProcessSupport"),

        // Shared test doubles and fixtures (never linked into the shipped `flowchain`)
        .target(
            name: "FlowchainTesting",
            dependencies: ["FlowchainCrypto", "Ledger", "CSodium", "ProcessSupport"]
        ),

        .testTarget(name: "FlowchainCryptoTests", dependencies: ["FlowchainCrypto", "FlowchainTesting"], exclude: ["Fixtures"]),
        .testTarget(name: "ConsensusTests", dependencies: ["Consensus", "Ledger", "FlowchainCrypto", "FlowchainTesting", .product(name: "GRDB", package: "GRDB.swift")]),
        .testTarget(
            name: "ChordTests",
            dependencies: ["Chord", "FlowchainCrypto", "FlowchainTesting", .product(name: "BigInt", package: "BigInt")]
        ),
        .testTarget(name: "LedgerTests", dependencies: ["Ledger", "FlowchainCrypto", "FlowchainTesting"]),
        .testTarget(
            name: "NodeServerTests",
            dependencies: [
                "NodeServer", "FlowchainWire", "Ledger", "FlowchainCrypto", "FlowchainTesting",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HummingbirdWSTesting", package: "hummingbird-websocket"),
                .product(name: "WSClient", package: "swift-websocket"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "MQTTBridgeTests", dependencies: ["MQTTBridge", "Ledger", "LedgerModel", "FlowchainCrypto", "FlowchainTesting"]),
        .testTarget(name: "PeerNetworkTests", dependencies: ["PeerNetwork", "Chord", "FlowchainCrypto", "Ledger", "FlowchainTesting", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "SensorsTests", dependencies: ["Sensors", "Ledger", "FlowchainCrypto", "FlowchainTesting", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "FlowchainWireTests", dependencies: ["FlowchainWire", "LedgerModel", "FlowchainCrypto", "FlowchainTesting"]),
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "Ledger", "Consensus", "FlowchainCrypto", "FlowchainTesting", "NodeServer", "FlowchainWire", "FlowchainClient", "FlowchainNode", "MQTTBridge", "Sensors", "flowchain",
                .product(name: "WSClient", package: "swift-websocket"),
                .product(name: "Logging", package: "swift-log"),
            ],
            exclude: ["Python"]
        ),
    ]
)

/// Modules whose imports are internal unless marked `public import` (their public API names the
/// modules it exposes); the rest re-export too much through executables and tests to gain from it.
let internalImports: Set<String> = ["FlowchainCrypto", "LedgerModel", "Chord", "Consensus", "FlowchainWire", "FlowchainClient", "ProcessSupport"]

for target in package.targets where target.type != .system {
    target.swiftSettings = (target.swiftSettings ?? []) + upcoming
        + (internalImports.contains(target.name) ? [.enableUpcomingFeature("InternalImportsByDefault")] : [])
}
