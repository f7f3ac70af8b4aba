import FlowchainCrypto
import Foundation
import Ledger
import Logging
import ServiceLifecycle

/// Feeds synthetic temperature/humidity readings from `demo-0`… so a newcomer sees blocks grow.
struct DemoFeeder: Service {
    let engine: IngestEngine
    let configuration: DemoConfiguration
    let clock: WallClock
    let logger: Logger

    func run() async throws {
        let key = engine.key
        var seqs = try engine.store.lastSeqs()
        let ackLog = try configuration.ackLogPath.map(AckLog.init)
        let devices = (0..<configuration.devices).map { "demo-\($0)" }
        let period = Duration.seconds(1.0 / max(configuration.rate, 0.01))
        logger.info("demo feed started: \(devices.joined(separator: ", ")), \(configuration.rate) readings/s each")
        var tick = 0
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            tick += 1
            let now = clock.milliseconds()
            var batch: [Reading] = []
            for (i, device) in devices.enumerated() {
                let seq = (seqs[device] ?? 0) + 1
                seqs[device] = seq
                let phase = Double(tick) / 40 + Double(i)
                let payload = String(format: #"{"temperature":%.2f,"humidity":%.1f}"#,
                                     21 + 3 * sin(phase) + Double.random(in: -0.2...0.2),
                                     50 + 10 * cos(phase / 2) + Double.random(in: -1...1))
                batch.append(try Reading(device: device, seq: seq, time: now, source: .demo, payload: Array(payload.utf8), signedBy: key))
            }
            await withTaskGroup(of: Void.self) { group in
                for reading in batch {
                    group.addTask {
                        do {
                            let ack = try await engine.submit(reading)
                            ackLog?.append(ack.id.hex)
                        } catch {
                            logger.warning("demo reading refused", metadata: ["device": "\(reading.device)", "error": "\(error)"])
                        }
                    }
                }
            }
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: period) }
            } catch {
                break
            }
        }
        logger.info("demo feed stopped")
    }
}

/// An append-only file of acknowledged ids; each line is one `write(2)` so it survives SIGKILL.
final class AckLog: Sendable {
    private let fd: Int32

    init(path: String) throws {
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw NodeError.configuration("cannot open ack log \(path): \(String(cString: strerror(errno)))") }
    }

    func append(_ line: String) {
        let bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    }

    deinit { close(fd) }
}
