import Foundation
import Ledger
import LedgerModel
import Logging
import ServiceLifecycle

/// Applies the retention policy to the node's ledger, and to each copy it keeps of another node's
/// chain (each file held to the same limits): shortly after start, then every `interval`. Each
/// pass that prunes says in the log what it dropped and how the file's size changed.
struct RetentionService: Service {
    let store: LedgerStore
    let policy: RetentionPolicy
    let wall: WallClock
    var interval: Duration = .seconds(60)
    var firstPass: Duration = .seconds(5)
    /// The copies of other nodes' chains this node keeps, named for the log.
    var copies: @Sendable () -> [(name: String, store: LedgerStore)] = { [] }
    let logger: Logger

    func run() async throws {
        var wait = firstPass
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            do { try await Task.sleep(for: wait) } catch { return }
            wait = interval
            if Task.isShuttingDownGracefully { return }
            await apply(to: store, copy: nil)
            for copy in copies() {
                if Task.isShuttingDownGracefully { return }
                await apply(to: copy.store, copy: copy.name)
            }
        }
    }

    /// One pass over one file; what it did goes to the log (a failure too: the next pass tries again).
    private func apply(to store: LedgerStore, copy: String?) async {
        let name = copy.map { "copy of \($0)" } ?? "the ledger"
        let prefix = copy.map { "copy of \($0): " } ?? ""
        do {
            let report = try await policy.apply(to: store, now: wall.milliseconds())
            if report.convertedToIncrementalVacuum {
                logger.notice("retention: \(prefix)the file was rewritten once (VACUUM) so that pruned space can be given back from now on")
            }
            if report.readings > 0 {
                logger.notice("retention: \(prefix)pruned the payloads of \(report.readings) readings in \(report.blocks) blocks (blocks below \(report.prunedBelow) are pruned); \(copy == nil ? "ledger " : "")\(Self.megabytes(report.bytesBefore)) → \(Self.megabytes(report.bytesAfter))")
            }
            if let max = policy.maxBytes, report.bytesAfter > max {
                logger.warning("retention: \(name) is \(Self.megabytes(report.bytesAfter)), over its limit of \(Self.megabytes(max)), and nothing more may be pruned (the newest \(LedgerStore.unprunableTail) blocks, \(copy == nil ? "the pending readings, the ids of pruned readings and the anchor chain" : "and the ids of pruned readings") are kept)")
            }
        } catch {
            logger.error("retention: \(prefix)pruning failed: \(error)")
        }
    }

    static func megabytes(_ bytes: Int64) -> String {
        String(format: "%.1f MB", Double(bytes) / 1e6)
    }
}
