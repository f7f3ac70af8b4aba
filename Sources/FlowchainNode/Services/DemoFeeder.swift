import FlowchainCrypto
import Foundation
import Ledger
import Logging
import ServiceLifecycle

/// Feeds synthetic temperature/humidity readings from `demo-0`… so a newcomer sees blocks grow.
struct DemoFeeder: Service {
    /// Where readings go: the engine, or the ring's router.
    let ingest: any ReadingIngest
    let configuration: DemoConfiguration
    let clock: WallClock
    let logger: Logger

    func run() async throws {
        let ackLog = try configuration.ackLogPath.map(AckLog.init)
        let devices = (0..<configuration.devices).map { "demo-\($0)" }
        let period = Duration.seconds(1.0 / max(configuration.rate, 0.01))
        logger.info("demo feed started: \(devices.joined(separator: ", ")), \(configuration.rate) readings/s each")
        var tick = 0
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            tick += 1
            let now = clock.milliseconds()
            var batch: [Submission] = []
            for (i, device) in devices.enumerated() {
                let phase = Double(tick) / 40 + Double(i)
                let payload = String(format: #"{"temperature":%.2f,"humidity":%.1f}"#,
                                     21 + 3 * sin(phase) + Double.random(in: -0.2...0.2),
                                     50 + 10 * cos(phase / 2) + Double.random(in: -1...1))
                // Numbered and signed by the node that owns the device (this one, alone).
                batch.append(.unsigned(device: device, payload: Array(payload.utf8), time: nil, timeQuality: .synced, source: .demo))
            }
            for (submission, outcome) in zip(batch, await ingest.ingest(batch, after: nil)) {
                switch outcome {
                case let .success(ack): ackLog?.append(ack.id.hex)
                case .failure(.queued): logger.debug("demo reading of \(submission.device) waits in the forward queue for its owner")
                case let .failure(error): logger.warning("demo reading refused", metadata: ["device": "\(submission.device)", "error": "\(error)"])
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
