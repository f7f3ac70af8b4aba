import Foundation
import Ledger
import LedgerModel
import Logging
import ServiceLifecycle

/// Applies the retention policy to the node's ledger: shortly after start, then every `interval`.
/// Each pass that prunes says in the log what it dropped and how the file's size changed.
struct RetentionService: Service {
    let store: LedgerStore
    let policy: RetentionPolicy
    let wall: WallClock
    var interval: Duration = .seconds(60)
    var firstPass: Duration = .seconds(5)
    let logger: Logger

    func run() async throws {
        var wait = firstPass
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            do { try await Task.sleep(for: wait) } catch { return }
            wait = interval
            if Task.isShuttingDownGracefully { return }
            do {
                let report = try await policy.apply(to: store, now: wall.milliseconds())
                if report.convertedToIncrementalVacuum {
                    logger.notice("retention: the ledger file was rewritten once (VACUUM) so that pruned space can be given back from now on")
                }
                if report.readings > 0 {
                    logger.notice("retention: pruned the payloads of \(report.readings) readings in \(report.blocks) blocks (blocks below \(report.prunedBelow) are pruned); ledger \(Self.megabytes(report.bytesBefore)) → \(Self.megabytes(report.bytesAfter))")
                }
                if let max = policy.maxBytes, report.bytesAfter > max {
                    logger.warning("retention: the ledger is \(Self.megabytes(report.bytesAfter)), over its limit of \(Self.megabytes(max)), and nothing more may be pruned (the newest \(LedgerStore.unprunableTail) blocks, the pending readings, the ids of pruned readings and the anchor chain are kept)")
                }
            } catch {
                logger.error("retention: pruning failed: \(error)")
            }
        }
    }

    static func megabytes(_ bytes: Int64) -> String {
        String(format: "%.1f MB", Double(bytes) / 1e6)
    }
}
