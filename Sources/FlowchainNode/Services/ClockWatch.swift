import FlowchainWire
import Ledger
import LedgerModel
import Logging
import ServiceLifecycle

/// Says in the log whether the system clock is synchronised: at start, and whenever that changes
/// (checked every 30 s), so an operator of a board without a real-time clock sees why its
/// readings carry `timeSynced: false` and when that ends. When the clock becomes synchronised
/// after a stretch without, the correction is recorded in the ledger, never applied silently:
/// a reading of device `clock-<first 12 hex digits of the node key>` says by how much the
/// readings this node stamped meanwhile were off, measured on the monotonic clock, so their true
/// times can be derived (readings are signed and are never rewritten).
struct ClockWatch: Service {
    let clock: ClockSync
    /// The node's public key (hex): whose clock this is.
    let node: String
    var device: String { "clock-\(node.prefix(12))" }
    let wall: WallClock
    /// Where the correction record goes (the node's ingest entry point).
    var ingest: (any ReadingIngest)? = nil
    var interval: Duration = .seconds(30)
    let logger: Logger

    func run() async throws {
        var last: Bool? = nil
        // Wall and monotonic time when the clock was first seen unsynchronised.
        var unsynced: (wall: Int64, at: ContinuousClock.Instant)? = nil
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            let state = clock.state
            if state.synchronised != last {
                if state.synchronised {
                    if last != nil { logger.notice("the system clock is synchronised now: readings this node time-stamps are marked timeSynced") }
                    if let since = unsynced { await recordCorrection(since: since) }
                    unsynced = nil
                } else {
                    unsynced = (wall.milliseconds(), .now)
                    let why = switch clock.mode {
                    case .untrusted: "--clock-sync untrusted"
                    default: state.maxErrorMicroseconds < 0 ? "the kernel's clock state cannot be read" : "the kernel's maximum clock error is \(state.maxErrorMicroseconds / 1_000_000) s (no NTP, chrony or timesyncd has set it)"
                    }
                    logger.warning("the system clock is not synchronised (\(why)): readings this node time-stamps are marked timeSynced: false until it is")
                }
                last = state.synchronised
            }
            do { try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) } } catch { break }
        }
    }

    /// The wall clock moved by more than time passed (NTP set it): readings stamped with the old
    /// clock between `since` and now are `offsetMs` off.
    func recordCorrection(since: (wall: Int64, at: ContinuousClock.Instant)) async {
        let now = wall.milliseconds()
        let elapsed = ContinuousClock.now - since.at
        let elapsedMs = elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000
        let offset = now - since.wall - elapsedMs
        let payload: JSONValue = [
            "event": "clock-synchronised",
            "node": .string(node),
            "offsetMs": .int(offset),
            "stampedFromMs": .int(since.wall),
            "stampedUntilMs": .int(since.wall + elapsedMs),
            "note": "readings this node stamped with timeSynced false between stampedFromMs and stampedUntilMs: true time = time + offsetMs",
        ]
        logger.notice("the system clock was \(offset) ms off while it was not synchronised; recorded as a reading of device \(device)")
        guard let ingest else { return }
        let outcome = await ingest.ingest([.unsigned(device: device, payload: payload.jsonBytes, time: nil, timeQuality: .synced, source: .rpc)], after: nil)
        if case let .failure(error) = outcome.first {
            logger.warning("could not record the clock correction: \(error)")
        }
    }
}
