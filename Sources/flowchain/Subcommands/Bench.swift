import ArgumentParser
import FlowchainBench
import Foundation

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure this machine: crypto limits, durable store, ingest engine, range queries.",
        discussion: """
            Scenarios:
              crypto  SHA-256 MiB/s; Ed25519 sign/s and verify/s, one core and all.
              store   durable readings/s, group commit against one commit per reading.
              ingest  engine readings/s with signature checks (against the all-core
                      verify rate of the same run); ack latency p50/p99 at a fixed
                      offered load (--rate).
              query   device/time-range query latency over --readings stored readings
                      (default 1,000,000), with SQLite's query plan.
              rpc     JSON-RPC submit over WebSocket into a real node process from
                      --clients connections, beside in-process ingest and a bare
                      WebSocket echo on the same server stack; the node's memory idle
                      and under load (RSS, PSS, USS, RssAnon); dashboard page weight.
              health  ack latency p99 of RPC submits at a fixed rate into a node
                      holding 200,000 readings, alone and while /health is polled
                      100 times a second.
              pos     kernel checks/s on one core; validating 10,000 anchor blocks;
                      an idle node's CPU share; then start-up time and RSS of a node
                      whose anchor chain holds --anchor-blocks blocks (default
                      1,000,000) against a node with an empty chain.
              mqtt    --messages QoS 1 messages (default 100,000) from a real client
                      through a mosquitto broker (started here) into a node's ledger:
                      readings committed/s, latency p50/p99 and node RSS, against
                      what mosquitto_sub -q 1 receives from the same broker and load.
              sensors the sampler's CPU per 1,000 samples (1-Wire and IIO files shaped
                      like sysfs) against reading the same files bare, and with each
                      sample signed and committed (GPIO: scripts/vm-gpio-test).
              chord   the Chord simulator: a 10,000-node ring answering 100,000
                      lookups, events/s, memory per simulated node.
              cluster a ring of --nodes real node processes on loopback: readings/s
                      at each acknowledgement level against one node alone (same
                      load), lookup hops, CPU per reading, and how long a joining
                      node takes to copy --takeover readings.
              disk    a node taking readings from --disk-devices devices (default 4,
                      each acknowledged before its next) at 1, 16 and 256 readings/s
                      (--disk-rate): bytes written per reading and per durable
                      commit (/proc/PID/io, and the block device's own count),
                      commits/s, ack latency p50/p99, beside the bytes the ledger
                      grew; idle bytes written per second. Each rate runs twice: as
                      the node runs (acknowledgement journal), then the reference,
                      each acknowledgement its own fsynced SQLite transaction.
                      --seconds per rate and run (at least 20).
              start   time from start to "node ready" and RSS after start, for an
                      empty ledger and ledgers of --start-readings signed readings
                      (default 1,000,000 and 10,000,000, built here: minutes and
                      GBs); with --anchor-blocks > 0 also the long anchor chain.
              all     every scenario above.
            Build with `swift build -c release` first: debug figures are not
            representative. Each scenario works in a temporary directory it removes
            afterwards.
            """
    )

    enum Scenario: String, ExpressibleByArgument, CaseIterable {
        case crypto, store, ingest, query, rpc, health, pos, mqtt, sensors, chord, cluster, disk, start, all
    }

    @Argument(help: "crypto, store, ingest, query, rpc, health, pos, mqtt, sensors, chord, cluster, disk, start or all.") var scenario: Scenario
    @Option(help: "Concurrent connections for the rpc scenario.") var clients = 8
    @Flag(help: "Print JSON instead of tables.") var json = false
    @Option(help: "Readings stored for the query scenario.") var readings = 1_000_000
    @Option(help: "Offered load for the ingest latency measurement, readings/s.") var rate = 1000
    @Option(help: "Anchor blocks of the long chain in the pos scenario (0 skips it).") var anchorBlocks = 1_000_000
    @Option(help: "QoS 1 messages for the mqtt scenario (each run: the reference, then the node).") var messages = 100_000
    @Option(help: "Nodes in the cluster scenario's ring.") var nodes = 5
    @Option(help: ArgumentHelp("With disk: the nodes' --commit-window (ms); default the node's own.", valueName: "ms")) var commitWindow: Int?
    @Option(name: .customLong("disk-rate"), help: ArgumentHelp("With disk: a rate to run, readings/s (repeat for several; default 1, 16 and 256).", valueName: "n"))
    var diskRates: [Int] = []
    @Option(name: .customLong("disk-block-interval"), help: ArgumentHelp("With disk: the nodes' --block-interval (ms); default the node's own.", valueName: "ms"))
    var diskBlockInterval: Int?
    @Option(name: .customLong("disk-prefill"), help: ArgumentHelp("With disk: readings the ledger holds before the load (large indexes, as on a node that has run for months).", valueName: "n"))
    var diskPrefill = 0
    @Option(name: .customLong("disk-devices"), help: ArgumentHelp("With disk: how many devices share the rate, each with one reading in flight.", valueName: "n"))
    var diskDevices = 4
    @Option(help: "Seconds of load per cluster run (the single node, then the ring at each ack level), or per rate of the disk scenario (at least 20).") var seconds = 10.0
    @Option(help: ArgumentHelp("Ledger sizes for the start scenario (readings; repeatable).", valueName: "n")) var startReadings: [Int] = [1_000_000, 10_000_000]
    @Option(help: "Readings a node joining the cluster scenario's ring takes over (0 skips it).") var takeover = 100_000

    func validate() throws {
        guard (1000...1_000_000).contains(messages) else { throw ValidationError("--messages must be 1000…1000000") }
        guard readings >= 1000 else { throw ValidationError("--readings must be at least 1000") }
        guard (1...100_000).contains(rate) else { throw ValidationError("--rate must be 1…100000") }
        guard (1...256).contains(clients) else { throw ValidationError("--clients must be 1…256") }
        guard anchorBlocks >= 0 else { throw ValidationError("--anchor-blocks must be 0 or more") }
        guard (2...16).contains(nodes) else { throw ValidationError("--nodes must be 2…16") }
        guard (1...600).contains(seconds) else { throw ValidationError("--seconds must be 1…600") }
        guard diskRates.allSatisfy({ (1...10_000).contains($0) }) else { throw ValidationError("--disk-rate must be 1…10000 readings/s") }
        guard (1...1024).contains(diskDevices) else { throw ValidationError("--disk-devices must be 1…1024") }
        guard (0...10_000_000).contains(takeover) else { throw ValidationError("--takeover must be 0…10000000") }
        guard !startReadings.isEmpty, startReadings.allSatisfy({ (1000...100_000_000).contains($0) }) else { throw ValidationError("--start-readings must be 1000…100000000") }
    }

    func run() async throws {
        let progress: (String) -> Void = { FileHandle.standardError.write(Data("bench: \($0)\n".utf8)) }
        if let warning = BenchEnvironment.buildWarning { progress("warning: \(warning)") }
        var reports: [BenchReport] = []
        /// `first`, then a node's start on a long anchor chain (--anchor-blocks), each shown as it is done.
        func alsoLongChain(_ first: BenchReport) async throws {
            if !json { print(first.table) }
            reports.append(first)
            let long = try await PoSBench.longChain(count: anchorBlocks, progress: progress)
            if !json { print(long.table) }
            reports.append(long)
        }
        let chosen: [Scenario] = scenario == .all ? [.crypto, .store, .ingest, .query, .rpc, .health, .pos, .mqtt, .sensors, .chord, .cluster, .disk, .start] : [scenario]
        for s in chosen {
            let report: BenchReport
            switch s {
            case .crypto: report = try CryptoBench.run(progress: progress)
            case .store: report = try LedgerBench.store(progress: progress)
            case .ingest: report = try await LedgerBench.ingest(rate: rate, progress: progress)
            case .query: report = try LedgerBench.query(count: readings, progress: progress)
            case .rpc: report = try await RPCBench.run(clients: clients, progress: progress)
            case .health: report = try await HealthBench.run(progress: progress)
            case .pos:
                report = try await PoSBench.run(progress: progress)
                if anchorBlocks > 0 { try await alsoLongChain(report); continue }
            case .mqtt: report = try await MQTTBench.run(messages: messages, progress: progress)
            case .sensors: report = try await SensorBench.run(progress: progress)
            case .chord: report = ChordBench.run(progress: progress)
            case .cluster: report = try await ClusterBench.run(nodes: nodes, seconds: seconds, clients: clients, takeover: takeover, progress: progress)
            case .start:
                report = try await StartBench.run(sizes: startReadings, progress: progress)
                // Under `all`, the pos scenario has measured the long anchor chain already.
                if anchorBlocks > 0, scenario == .start { try await alsoLongChain(report); continue }
            case .disk:
                report = try await DiskBench.run(seconds: max(seconds, 20), rates: diskRates.isEmpty ? [1, 16, 256] : diskRates,
                                                 devices: diskDevices, prefill: diskPrefill,
                                                 extra: (commitWindow.map { ["--commit-window", "\($0)"] } ?? []) + (diskBlockInterval.map { ["--block-interval", "\($0)"] } ?? []),
                                                 progress: progress)
            case .all: continue
            }
            if !json { print(report.table) }
            reports.append(report)
        }
        if json {
            var out: [String: Any] = ["cores": BenchEnvironment.cores, "scenarios": reports.map(\.json)]
            if let warning = BenchEnvironment.buildWarning { out["warning"] = warning }
            try printJSON(out)
        }
    }
}
