public import FlowchainCrypto
public import LedgerModel

/// A reading's proof carried through to the anchor chain: reading → Merkle path → its signed
/// segment block → the segment headers up to a committed head → the anchor block committing it.
public struct AnchoredProof: Sendable {
    public let reading: ReadingProof
    /// Headers after the reading's block, up to and including the committed head.
    public let segments: [BlockHeader]
    public let anchor: AnchorBlock

    public init(reading: ReadingProof, segments: [BlockHeader], anchor: AnchorBlock) {
        self.reading = reading
        self.segments = segments
        self.anchor = anchor
    }

    public enum Verdict: Equatable, Sendable {
        case valid(segmentHeight: UInt64, anchorHeight: UInt64)
        case invalid(String)
    }

    /// Everything `ReadingProof.verify` checks, then the segment chain and the anchor block's
    /// signature and commitment. Whether that anchor block is on the heaviest chain is for the
    /// caller to check against a chain (see `AnchorChain.isOnActiveChain`).
    public func verify(owner: PublicKey? = nil) -> Verdict {
        guard case let .valid(height) = reading.verify(owner: owner), let first = reading.block else {
            if case let .invalid(why) = reading.verify(owner: owner) { return .invalid(why) }
            return .invalid("the reading is not in a block yet")
        }
        var previous = first
        for s in segments {
            guard s.owner == first.owner else { return .invalid("segment block \(s.height) has another owner") }
            guard s.height == previous.height + 1, s.prev == previous.hash else {
                return .invalid("segment block \(s.height) does not follow block \(previous.height)")
            }
            guard s.hasValidSignature else { return .invalid("segment block \(s.height) is not signed by its owner") }
            previous = s
        }
        guard anchor.heads.contains(where: { $0.hash == previous.hash }) else {
            return .invalid("anchor block \(anchor.height) does not commit segment block \(previous.height)")
        }
        guard anchor.hasValidSignature else { return .invalid("anchor block \(anchor.height) is not signed by its minter") }
        return .valid(segmentHeight: height, anchorHeight: anchor.height)
    }

    /// What could be established about the anchor block itself.
    public enum AnchorVerdict: Equatable, Sendable {
        /// On the heaviest chain built from a trusted genesis, every rule checked.
        case verified
        /// Nothing proves the anchor block was minted with stake; the reason says what is missing.
        case notVerified(String)
        /// The anchor part is false: it breaks a rule of the trusted chain.
        case invalid(String)
    }

    /// Checks the anchor block against `genesis` (which the verifier trusts) by replaying the anchor
    /// blocks the proof carries (`chain`, heights 1…anchor) through every rule, then requiring the
    /// anchor block on the heaviest chain that results.
    public func verifyAnchor(genesis: Genesis, chain blocks: [AnchorBlock]?, now: Int64) -> AnchorVerdict {
        guard anchor.chain == genesis.hash else {
            return .invalid("anchor block \(anchor.height) belongs to chain \(anchor.chain.hex.prefix(16))…, not to the trusted genesis \(genesis.hash.hex.prefix(16))…")
        }
        guard let blocks else {
            return .notVerified("the proof carries no anchor chain to replay (ask for it with `flowchain proof --anchor-chain`)")
        }
        let chain = AnchorChain(genesis: genesis)
        for block in blocks {
            do {
                if case .orphan = try chain.accept(block, now: now) {
                    return .invalid("anchor block \(block.height) in the proof does not follow the blocks before it")
                }
            } catch {
                return .invalid("\(error)")
            }
        }
        return verifyAnchor(on: chain)
    }

    /// Checks the anchor block against a chain the verifier already trusts (e.g. its own node's).
    public func verifyAnchor(on chain: AnchorChain) -> AnchorVerdict {
        if chain.isOnActiveChain(anchor) { return .verified }
        if anchor.chain != chain.genesisHash { return .invalid("anchor block \(anchor.height) belongs to another chain") }
        if chain.entry(anchor.hash) != nil { return .invalid("anchor block \(anchor.height) is on a side branch, not on the heaviest anchor chain") }
        if anchor.height > chain.tip.height { return .notVerified("the trusted anchor chain is only at height \(chain.tip.height); anchor block \(anchor.height) is not known yet") }
        return .invalid("anchor block \(anchor.height) is not on the trusted anchor chain (another block holds that height)")
    }

    public var portable: ReadingProof.Portable { portable(chain: nil) }

    /// The portable proof, carrying `chain` (anchor blocks 1…anchor) when given.
    public func portable(chain: [AnchorBlock]?) -> ReadingProof.Portable {
        var p = reading.portable
        p.anchor = .init(block: Hex.encode(anchor.encoded), segments: segments.map { Hex.encode($0.encoded) },
                         chain: chain.map { $0.map { Hex.encode($0.encoded) } })
        return p
    }

    /// The anchor blocks a portable proof carries, decoded; nil when it carries none.
    public static func carriedChain(_ p: ReadingProof.Portable) throws -> [AnchorBlock]? {
        guard let hexes = p.anchor?.chain else { return nil }
        return try hexes.enumerated().map { i, hex in
            guard let bytes = Hex.decode(hex) else { throw DecodingError.invalid(field: "anchor.chain[\(i)]", reason: "not hex") }
            return try AnchorBlock(encoded: bytes)
        }
    }

    /// The anchored proof in a portable document, or nil when it carries no anchor part.
    public init?(portable p: ReadingProof.Portable) throws {
        guard let a = p.anchor else { return nil }
        guard let blockBytes = Hex.decode(a.block) else { throw DecodingError.invalid(field: "anchor.block", reason: "not hex") }
        let segments = try a.segments.enumerated().map { i, hex in
            guard let bytes = Hex.decode(hex) else { throw DecodingError.invalid(field: "anchor.segments[\(i)]", reason: "not hex") }
            return try BlockHeader(encoded: bytes)
        }
        self.init(reading: try ReadingProof(portable: p), segments: segments, anchor: try AnchorBlock(encoded: blockBytes))
    }
}

extension AnchorChain {
    /// True when `block` is on this node's heaviest chain.
    public func isOnActiveChain(_ block: AnchorBlock) -> Bool { activeEntry(at: block.height)?.hash == block.hash }
}
