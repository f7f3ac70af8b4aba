import Chord
import Consensus
import FlowchainCrypto
import Foundation
import Ledger
import Logging
import Synchronization

/// One anchor chain for the ring. Anchor blocks, segment heads and stake records spread by
/// gossip: a node sends what is new to it to its successors and fingers (at most 16), each item
/// once (duplicates are recognised and not sent on). A node that hears of a block whose parent it
/// lacks, that joins, or every 10 s, catches up from a peer in batches of 500 blocks. Minters
/// commit every node's newest segment head they heard of, and carry the stake records.
public final class AnchorGossip: Sendable {
    let anchor: AnchorNode
    let transport: PeerTransport
    let now: @Sendable () -> Int64
    let logger: Logger
    /// This node's place in the ring (nil before it has one).
    let ring: @Sendable () async -> RingStatus?
    private let state = Mutex<State>(State())

    struct State {
        /// Recently seen block hashes, head (owner, height) keys and record hashes: not sent on again.
        var seen: Set<[UInt8]> = []
        var order: [[UInt8]] = []
        var heads: [PublicKey: BlockHeader] = [:]
        var records: [[UInt8]: (record: StakeRecord, until: Int64)] = [:]
        /// Whether the first catch-up from a peer finished (minting waits for it in a ring).
        var synced = false
    }

    public init(anchor: AnchorNode, transport: PeerTransport, now: @escaping @Sendable () -> Int64, logger: Logger,
                ring: @escaping @Sendable () async -> RingStatus?) {
        self.ring = ring
        self.anchor = anchor
        self.transport = transport
        self.now = now
        self.logger = logger
    }

    /// The newest segment head heard of for each other node.
    public var heads: [BlockHeader] { state.withLock { Array($0.heads.values) } }
    /// Stake records heard of and not yet expired (a minter drops those that no longer apply).
    public var records: [StakeRecord] {
        let t = now() / 1000
        return state.withLock { s in
            s.records = s.records.filter { $0.value.until > t }
            return s.records.values.map(\.record)
        }
    }
    public var synced: Bool { state.withLock { $0.synced } }

    /// Whether this node knows no other node of the ring (a lone node).
    public var alone: Bool {
        get async { (await ring()).map { $0.known.count <= 1 } ?? true }
    }
    /// Nobody to catch up from (a ring of one): this node's chain is the chain.
    func markSynced() { state.withLock { $0.synced = true } }

    /// True the first time `key` is seen (then remembered among the last 8,192).
    private func firstSight(_ key: [UInt8]) -> Bool {
        state.withLock { s in
            guard s.seen.insert(key).inserted else { return false }
            s.order.append(key)
            if s.order.count > 8192 { s.seen.remove(s.order.removeFirst()) }
            return true
        }
    }

    /// Who gossip goes to: successors and fingers, distinct, at most 16, never `except`.
    func targets(_ view: RingStatus, except: ChordID?) -> [NodeRef] {
        var out: [NodeRef] = []
        for n in view.successors + view.fingers where n.id != view.me.id && n.id != except && !out.contains(where: { $0.id == n.id }) {
            out.append(n)
            if out.count == 16 { break }
        }
        return out
    }

    private func spread(_ method: PeerMethod, _ body: [UInt8], except: ChordID?) {
        let transport = self.transport, ring = self.ring
        Task {
            guard let view = await ring() else { return }
            for t in self.targets(view, except: except) {
                guard let c = try? await transport.connection(to: t) else { continue }
                _ = c.send(method, body)  // fire and forget: the answer is only an acknowledgement
            }
        }
    }

    // MARK: Blocks

    /// A block this node minted: to the ring.
    public func announce(_ block: AnchorBlock) {
        _ = firstSight(block.hash.bytes)
        spread(.anchorBlock, block.encoded, except: nil)
    }

    /// A block a peer sent: checked and stored by the anchor node; sent on when it was new and
    /// valid; a missing parent starts a catch-up from that peer.
    func received(block bytes: [UInt8], from peer: PeerConnection) async -> (PeerStatus, [UInt8]) {
        let block: AnchorBlock
        do { block = try AnchorBlock(encoded: bytes) } catch { return (.error, Array("malformed anchor block: \(error)".utf8)) }
        guard firstSight(block.hash.bytes) else { return (.ok, []) }
        do {
            switch try await anchor.receive(block, now: now() / 1000) {
            case .orphan:
                Task { await self.catchUp(from: peer) }
            case .duplicate, .stale:
                break
            case .extended, .reorganized, .sideChain:
                spread(.anchorBlock, bytes, except: peer.id)
            }
            return (.ok, [])
        } catch {
            logger.warning("refused anchor block \(block.height) from \(peer.name): \(error)")
            return (.error, Array("\(error)".utf8))
        }
    }

    /// Serves `anchorSync`: the active blocks after the height asked for.
    func serveSync(_ body: [UInt8]) async -> (PeerStatus, [UInt8]) {
        var r = BinaryReader(body)
        guard let height = try? r.u64("height") else { return (.error, Array("malformed anchor sync request".utf8)) }
        do {
            let blocks = try await anchor.blocks(after: height, limit: 500)
            var w = BinaryWriter(capacity: blocks.count * 300)
            w.u32(UInt32(blocks.count))
            for b in blocks { w.long(b.encoded) }
            return (.ok, w.bytes)
        } catch {
            return (.error, Array("\(error)".utf8))
        }
    }

    /// Downloads the blocks this node lacks from `peer`, 500 per request, validating each: from
    /// just above its final height (so a fork above it is found too) up to the peer's tip.
    public func catchUp(from peer: PeerConnection) async {
        let tip0 = await anchor.tip.height
        var height = max(await anchor.finalHeight, tip0 > 64 ? tip0 - 64 : 0)
        var received = 0
        while !Task.isCancelled {
            var w = BinaryWriter(capacity: 8)
            w.u64(height)
            guard case let .success(body) = await peer.request(.anchorSync, w.bytes, timeout: .seconds(30)) else { break }
            var r = BinaryReader(body)
            guard let n = try? r.u32("count") else { break }
            var blocks: [AnchorBlock] = []
            for i in 0..<Int(n) {
                guard let bytes = try? r.long("block[\(i)]", limit: 1 << 20), let b = try? AnchorBlock(encoded: bytes) else { break }
                blocks.append(b)
            }
            if blocks.isEmpty { break }
            for b in blocks {
                _ = firstSight(b.hash.bytes)
                do {
                    if try await anchor.receive(b, now: now() / 1000) != .duplicate { received += 1 }
                } catch {
                    logger.warning("anchor catch-up from \(peer.name): block \(b.height) refused: \(error)")
                    return
                }
            }
            height = blocks.last!.height
            if blocks.count < 500 { break }
        }
        let tip = await anchor.tip
        if received > 0 { logger.info("anchor chain caught up from \(peer.name): \(received) new block(s), tip \(tip.height)") }
        state.withLock { $0.synced = true }
    }

    // MARK: Segment heads and stake records

    /// This node's new segment head, or one a peer sent: remembered for minting and sent on.
    public func announce(head: BlockHeader, from peer: ChordID? = nil) -> Bool {
        guard head.hasValidSignature else { return false }
        var key = head.owner.bytes
        withUnsafeBytes(of: head.height.bigEndian) { key += $0 }
        guard firstSight(key) else { return true }
        state.withLock { s in
            if s.heads[head.owner].map({ head.height > $0.height }) ?? true { s.heads[head.owner] = head }
        }
        spread(.segmentHead, head.encoded, except: peer)
        return true
    }

    /// A stake record submitted here or sent by a peer: kept for an hour for minters, sent on.
    public func announce(record: StakeRecord, from peer: ChordID? = nil) -> Bool {
        guard record.hasValidSignature else { return false }
        guard firstSight(record.encoded) else { return true }
        let until = now() / 1000 + 3600
        state.withLock { $0.records[record.encoded] = (record, until) }
        spread(.stakeRecord, record.encoded, except: peer)
        return true
    }
}
