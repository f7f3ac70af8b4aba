import ArgumentParser
import FlowchainNode
import Foundation
import Logging

struct NodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node",
        abstract: "Run a Flowchain node on a data directory.",
        discussion: """
            Creates the data directory and node key on first run, re-verifies the newest blocks of \
            the ledger (and refuses to start on a damaged one), then commits readings into signed, \
            hash-linked segment blocks, one every --block-interval while readings are pending. \
            Logs a line per block. SIGTERM or SIGINT (Ctrl-C) stops the feeds, seals the pending \
            readings into a last block and exits 0.

            With --demo the node feeds itself synthetic readings from devices demo-0…demo-3.
            """
    )

    @OptionGroup var data: DataDirOption

    @Flag(help: "Feed synthetic readings from devices demo-0…demo-3.")
    var demo = false

    @Option(help: ArgumentHelp("Readings per second per demo device.", valueName: "n"))
    var demoRate = 4.0

    @Option(help: ArgumentHelp("Number of demo devices.", valueName: "n"))
    var demoDevices = 4

    @Option(help: ArgumentHelp("Append the id of every acknowledged demo reading to this file (used by the crash test).", valueName: "file"))
    var demoAckLog: String?

    @Option(help: ArgumentHelp("Milliseconds between segment blocks.", valueName: "ms"))
    var blockInterval = 1000

    @Option(help: ArgumentHelp("Most readings in one block; a full block is cut at once.", valueName: "n"))
    var maxBlockReadings = 4096

    @Option(help: ArgumentHelp("Largest accepted payload, in bytes.", valueName: "bytes"))
    var maxPayload = 16 * 1024

    @Option(help: ArgumentHelp("Newest blocks re-verified on start.", valueName: "n"))
    var tailCheck = 32

    @Option(help: ArgumentHelp("trace, debug, info, notice, warning, error or critical.", valueName: "level"))
    var logLevel = "info"

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level '\(logLevel)' is not one of trace, debug, info, notice, warning, error, critical") }
        guard blockInterval >= 10 else { throw ValidationError("--block-interval must be at least 10 ms") }
        guard maxBlockReadings >= 1 else { throw ValidationError("--max-block-readings must be at least 1") }
        guard maxPayload >= 2 else { throw ValidationError("--max-payload must be at least 2 bytes") }
        guard demoRate > 0, demoRate <= 10_000 else { throw ValidationError("--demo-rate must be in (0, 10000]") }
        guard (1...64).contains(demoDevices) else { throw ValidationError("--demo-devices must be 1…64") }
        guard tailCheck >= 0 else { throw ValidationError("--tail-check must be 0 or more") }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "flowchain")

        var config = NodeConfiguration()
        config.dataDirectory = DataDirectory(data.dataDir)
        config.blockInterval = .milliseconds(blockInterval)
        config.ingest.maxBlockReadings = maxBlockReadings
        config.ingest.maxPayloadBytes = maxPayload
        config.tailCheck = tailCheck
        if demo {
            var d = DemoConfiguration()
            d.rate = demoRate
            d.devices = demoDevices
            d.ackLogPath = demoAckLog
            config.demo = d
        }
        let node: Node
        do {
            node = try Node(configuration: config, logger: logger)
        } catch {
            throw failure("\(error)")
        }
        try await node.run()
    }
}
