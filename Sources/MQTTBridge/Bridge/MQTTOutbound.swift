import FlowchainWire
import Ledger
import Logging

/// Publishes what the ledger commits — each reading under `<prefix>/readings/<device>`, each block
/// under `<prefix>/blocks` — at QoS 1, in commit order. The ledger itself is the outbox: the bridge
/// keeps how far the broker has acknowledged (a position saved with the ledger), so a broker
/// outage only delays messages and a restart or crash re-sends from there (at least once).
public struct OutboundConfiguration: Sendable, Equatable {
    /// Topic prefix, e.g. `flowchain/3d4017c3e8f2`.
    public var prefix: String
    public var qos: Int32 = 1
    /// Largest number of messages awaiting the broker's acknowledgement at once.
    public var window = 100

    public init(prefix: String) { self.prefix = prefix }

    public var statusTopic: String { "\(prefix)/status" }
}

struct MQTTOutbound {
    let configuration: OutboundConfiguration
    /// The broker's name: each broker has its own saved positions.
    let broker: String
    let client: MQTTClient
    let store: LedgerStore
    let feed: CommitFeed
    let logger: Logger

    var readingsPosition: String { "mqtt-out-readings/\(broker)" }
    var blocksPosition: String { "mqtt-out-blocks/\(broker)" }

    /// Runs until the task is cancelled or the client closes.
    func run() async {
        // Wake-ups only: what to publish is read from the store after the saved position.
        let wake = feed.subscribeWakeUps(.readings(device: nil))
        let blockWake = feed.subscribeWakeUps(.blocks)
        defer {
            feed.unsubscribe(wake)
            feed.unsubscribe(blockWake)
        }
        let positions: (Int64, Int64)
        do {
            // First run: start from now, not from the whole history.
            let (rKey, bKey) = (readingsPosition, blocksPosition)
            positions = try await store.offload { s in
                (try s.position(rKey) ?? s.lastCursor(), try s.position(bKey) ?? (try s.tip().map { Int64($0.height) } ?? -1))
            }
        } catch {
            logger.error("MQTT bridge: cannot read the publishing position, not publishing: \(error)")
            return
        }
        var (readings, blocks) = positions
        logger.info("MQTT bridge \(broker): publishing readings after position \(readings) and blocks after height \(blocks) under \(configuration.prefix)/")
        let complaints = RateLimitedLog(logger: logger)
        while !Task.isCancelled {
            do {
                // Publish only while connected: while the broker is away the ledger keeps
                // everything, and this resumes from the saved position.
                guard client.isConnected else {
                    try await Task.sleep(for: .milliseconds(200))
                    continue
                }
                let (after, above, window) = (readings, blocks, configuration.window)
                let page = try await store.offload { try $0.readings(afterCursor: after, limit: window) }
                let sealed = try await store.offload { try $0.blocks(from: UInt64(above + 1), limit: window) }
                if page.isEmpty && sealed.isEmpty {
                    await Self.next(wake, blockWake)
                    continue
                }
                let sentReadings = await publish(page.map { r in
                    var w = JSONWriter()
                    ReadingWire.write(r, into: &w)
                    return ("\(configuration.prefix)/readings/\(r.reading.device)", w.bytes)
                })
                let sentBlocks = await publish(sealed.map { b in
                    var w = JSONWriter()
                    ReadingWire.write(b, into: &w)
                    return ("\(configuration.prefix)/blocks", w.bytes)
                })
                // Advance past what the broker acknowledged, in order; the rest is sent again.
                if sentReadings > 0 { readings = page[sentReadings - 1].rowid }
                if sentBlocks > 0 { blocks = Int64(sealed[sentBlocks - 1].height) }
                if sentReadings > 0 || sentBlocks > 0 {
                    let (r, b, rKey, bKey) = (readings, blocks, readingsPosition, blocksPosition)
                    try await store.offload { try $0.setPositions([rKey: r, bKey: b]) }
                }
                if sentReadings < page.count || sentBlocks < sealed.count { try await Task.sleep(for: .milliseconds(500)) }
            } catch is CancellationError {
                return
            } catch {
                complaints.warn("publish", "MQTT bridge: publishing paused: \(error)")
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// Publishes `messages` in order and returns how many, from the first, the broker acknowledged.
    private func publish(_ messages: [(topic: String, payload: [UInt8])]) async -> Int {
        guard !messages.isEmpty else { return 0 }
        return await client.publishAcknowledged(messages, qos: configuration.qos)
    }

    /// Waits for the next commit or block (or a second, whichever is first).
    static func next(_ a: CommitFeed.Subscription, _ b: CommitFeed.Subscription) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { for await _ in a.events { return } }
            group.addTask { for await _ in b.events { return } }
            group.addTask { try? await Task.sleep(for: .seconds(1)) }
            await group.next()
            group.cancelAll()
        }
    }
}
