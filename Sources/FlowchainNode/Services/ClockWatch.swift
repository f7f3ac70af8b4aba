import Ledger
import Logging
import ServiceLifecycle

/// Says in the log whether the system clock is synchronised: at start, and whenever that changes
/// (checked every 30 s), so an operator of a board without a real-time clock sees why its
/// readings carry `timeSynced: false` and when that ends.
struct ClockWatch: Service {
    let clock: ClockSync
    let logger: Logger

    func run() async throws {
        var last: Bool? = nil
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            let state = clock.state
            if state.synchronised != last {
                if state.synchronised {
                    if last != nil { logger.notice("the system clock is synchronised now: readings this node time-stamps are marked timeSynced") }
                } else {
                    let why = switch clock.mode {
                    case .untrusted: "--clock-sync untrusted"
                    default: state.maxErrorMicroseconds < 0 ? "the kernel's clock state cannot be read" : "the kernel's maximum clock error is \(state.maxErrorMicroseconds / 1_000_000) s (no NTP, chrony or timesyncd has set it)"
                    }
                    logger.warning("the system clock is not synchronised (\(why)): readings this node time-stamps are marked timeSynced: false until it is")
                }
                last = state.synchronised
            }
            do { try await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(30)) } } catch { break }
        }
    }
}
