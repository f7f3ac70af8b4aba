public import FlowchainCrypto

/// A reading as the store holds it: where it arrived and, once committed to a block, where it sits.
public struct StoredReading: Sendable, Hashable {
    public let reading: Reading
    /// Arrival order on this node.
    public let rowid: Int64
    /// The segment block holding it, nil while it waits for the next block.
    public let block: UInt64?
    public let leaf: UInt32?

    public init(reading: Reading, rowid: Int64, block: UInt64?, leaf: UInt32?) {
        self.reading = reading
        self.rowid = rowid
        self.block = block
        self.leaf = leaf
    }
}

/// One page of a range query; pass `nextCursor` back to get the next one.
public struct Page<Item: Sendable>: Sendable {
    public let items: [Item]
    /// nil when this is the last page.
    public let nextCursor: String?

    public init(items: [Item], nextCursor: String?) {
        self.items = items
        self.nextCursor = nextCursor
    }
}

/// The position after the last item of a page, as `time:rowid`.
public struct ReadingCursor: Sendable, Equatable {
    public let time: Int64
    public let rowid: Int64

    public init(time: Int64, rowid: Int64) {
        self.time = time
        self.rowid = rowid
    }

    public init?(_ text: String) {
        let parts = text.split(separator: ":")
        guard parts.count == 2, let t = Int64(parts[0]), let r = Int64(parts[1]) else { return nil }
        time = t
        rowid = r
    }

    public var text: String { "\(time):\(rowid)" }
}

/// What the store did with a reading handed to `commit`.
public enum CommitOutcome: Sendable, Equatable {
    /// Newly stored and durable, at this arrival position (the subscription cursor).
    case stored(rowid: Int64)
    /// The same reading (same id) was already stored; nothing changed.
    case duplicate
    /// Refused: the device already has a reading with this or a later `seq`.
    case seqNotIncreasing(last: UInt64)
    /// Refused: `seq` is more than `Reading.maxSeqJump` above the device's last one (0 when none).
    case seqTooFar(last: UInt64)
    /// Refused: the device is bound to another signing key.
    case wrongSigner(bound: PublicKey)
}
