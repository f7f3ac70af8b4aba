import Foundation

/// The node's notion of "now" (wall time, ms since the epoch), injected wherever time is read —
/// the ingest engine, the anchor minter, the node — so tests and simulations control it.
public struct WallClock: Sendable {
    public let milliseconds: @Sendable () -> Int64

    public init(milliseconds: @escaping @Sendable () -> Int64) {
        self.milliseconds = milliseconds
    }

    /// The system's clock.
    public static let system = WallClock { Int64(Date().timeIntervalSince1970 * 1000) }

    /// A clock that always reads `ms` (for tests).
    public static func fixed(_ ms: Int64) -> WallClock { WallClock { ms } }

    /// Seconds since the epoch (the anchor chain's unit).
    public var seconds: Int64 { milliseconds() / 1000 }
}
