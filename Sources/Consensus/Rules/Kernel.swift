public import FlowchainCrypto
public import LedgerModel

/// The Proof-of-Stake kernel and the chain's difficulty rules.
public enum Kernel {
    /// `SHA-256(stakeModifier ‖ publicKey ‖ t)`, read as a 256-bit number.
    public static func hash(modifier: Digest32, key: PublicKey, time: Int64) -> UInt256 {
        // modifier (32) ‖ key (32) ‖ time (8, big-endian), hashed from one stack-sized buffer.
        var buffer = (modifier, key.raw, UInt64(bitPattern: time).bigEndian)
        return withUnsafeBytes(of: &buffer) { raw in
            UInt256(SHA256.hash(UnsafeRawBufferPointer(rebasing: raw[0..<72])))
        }
    }

    /// True when `key` with `stake` may mint at `time`: kernel hash < target × stake.
    public static func check(modifier: Digest32, key: PublicKey, time: Int64, target: UInt256, stake: UInt64) -> Bool {
        guard stake > 0 else { return false }
        return hash(modifier: modifier, key: key, time: time) < target.multipliedSaturating(by: stake)
    }

    /// The kernel hash as a digest (what `hash` compares as a number).
    public static func kernelDigest(modifier: Digest32, key: PublicKey, time: Int64) -> Digest32 {
        var buffer = (modifier, key.raw, UInt64(bitPattern: time).bigEndian)
        return withUnsafeBytes(of: &buffer) { raw in SHA256.hash(UnsafeRawBufferPointer(rebasing: raw[0..<72])) }
    }

    /// The child's stake modifier: from its parent's modifier and the parent's *kernel* hash, which
    /// depends only on the parent minter's key and timestamp. Nothing else the minter chooses — its
    /// records, heads or any other content of its block — can move it, so a winner cannot grind its
    /// block until it also wins the next one (PoSv3 derives its modifier from the kernel the same way).
    public static func modifier(parentModifier: Digest32, parentKernel: Digest32) -> Digest32 {
        SHA256.hash(Array("flowchain/modifier/v2".utf8) + parentModifier.bytes + parentKernel.bytes)
    }

    /// The first modifier, from the genesis hash.
    public static func genesisModifier(_ genesis: Digest32) -> Digest32 {
        SHA256.hash(Array("flowchain/modifier/genesis".utf8) + genesis.bytes)
    }

    /// Blocks in the retarget window: each block moves the target by at most a bounded step.
    ///
    /// With exponential block times the PPCoin rule settles where E[spacing] ≈ T·(1 + 1/(n+1)),
    /// so a short window runs slow: n = 10 gave intervals ~9% long, n = 100 keeps the bias near 1%.
    public static let retargetWindow: UInt64 = 100

    /// The target for the child of a block with `target` whose own spacing from its parent was
    /// `spacing` seconds (PPCoin-style: t' = t · ((n−1)·T + 2·s) / ((n+1)·T), s clamped to [1, 10·T]),
    /// so one block moves the target by a factor within [0.98, 1.18]
    /// never above `limit`.
    public static func retarget(_ target: UInt256, spacing: Int64, interval: UInt32, limit: UInt256) -> UInt256 {
        let T = UInt64(interval)
        let s = UInt64(min(max(spacing, 1), Int64(10 * T)))
        let n = retargetWindow
        let (up, down) = ((n - 1) * T + 2 * s, (n + 1) * T)
        // ⌊target · up / down⌋ exactly, without a 320-bit product: target = q·down + r, so the
        // result is q·up + ⌊r·up / down⌋, where r·up < 2^128.
        let q = target.divided(by: down)
        let r = target.subtracting(q.multipliedSaturating(by: down))
        let (hi, lo) = r.limbs.3.multipliedFullWidth(by: up)
        let (tail, _) = down.dividingFullWidth((hi, lo))
        let (next, overflow) = q.multipliedSaturating(by: up).addingReportingOverflow(UInt256(tail))
        return overflow ? limit : min(max(next, UInt256(1)), limit)
    }

    /// A block's share of chain weight: ⌊2^256 / (target + 1)⌋, computed without 257-bit numbers.
    public static func work(_ target: UInt256) -> UInt256 {
        let (t1, overflow) = target.addingReportingOverflow(UInt256(1))
        if overflow { return UInt256(1) }
        return target.inverted.divided(by: t1).addingReportingOverflow(UInt256(1)).0
    }
}
