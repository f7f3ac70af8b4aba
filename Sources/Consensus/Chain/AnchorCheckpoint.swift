import FlowchainCrypto
import LedgerModel

/// A final anchor-chain entry in a compact binary form, so a node restarts from its newest final
/// state instead of replaying the chain from genesis. Everything a child block is validated
/// against is in it: height, hash, time, target, modifier, kernel, spacing, weight and the stake
/// state (accounts, delayed bonds and unbonds, committed segment heads).
public enum AnchorCheckpoint {
    static let version: UInt8 = 1

    public static func encode(_ e: AnchorChain.Entry) -> [UInt8] {
        var w = BinaryWriter(capacity: 512)
        w.u8(version)
        w.fixed(e.hash.bytes)
        w.u64(e.height)
        w.i64(e.time)
        w.fixed(e.target.bytes)
        w.fixed(e.modifier.bytes)
        w.fixed(e.kernel.bytes)
        w.i64(e.spacing)
        w.fixed(e.weight.bytes)
        let accounts = e.state.accounts.sorted { $0.key < $1.key }
        w.u32(UInt32(accounts.count))
        for (key, a) in accounts {
            w.fixed(key.bytes); w.u64(a.stake); w.u64(a.balance); w.u64(a.nonce)
        }
        w.u32(UInt32(e.state.delayed.count))
        for d in e.state.delayed {
            w.u64(d.at); w.fixed(d.key.bytes); w.u64(d.amount); w.u8(d.toStake ? 1 : 0)
        }
        let heads = e.state.heads.sorted { $0.key < $1.key }
        w.u32(UInt32(heads.count))
        for (owner, head) in heads {
            w.fixed(owner.bytes); w.u64(head.height); w.fixed(head.hash.bytes)
        }
        return w.bytes
    }

    /// Decodes a checkpoint written by `encode`; every failure names the field.
    public static func decode(_ bytes: [UInt8]) throws -> AnchorChain.Entry {
        var r = BinaryReader(bytes)
        let v = try r.u8("version")
        guard v == version else { throw DecodingError.invalid(field: "version", reason: "unsupported checkpoint version \(v)") }
        let hash = try Digest32(bytes: r.fixed(32, "hash"))
        let height = try r.u64("height")
        let time = try r.i64("time")
        let target = UInt256(try Digest32(bytes: r.fixed(32, "target")))
        let modifier = try Digest32(bytes: r.fixed(32, "modifier"))
        let kernel = try Digest32(bytes: r.fixed(32, "kernel"))
        let spacing = try r.i64("spacing")
        let weight = UInt256(try Digest32(bytes: r.fixed(32, "weight")))
        var accounts: [PublicKey: StakeState.Account] = [:]
        for _ in 0..<(try r.u32("accounts")) {
            let key = try PublicKey(bytes: r.fixed(32, "account key"))
            accounts[key] = StakeState.Account(stake: try r.u64("stake"), balance: try r.u64("balance"), nonce: try r.u64("nonce"))
        }
        var delayed: [StakeState.Delayed] = []
        for _ in 0..<(try r.u32("delayed")) {
            let at = try r.u64("delayed at"), key = try PublicKey(bytes: r.fixed(32, "delayed key"))
            delayed.append(StakeState.Delayed(at: at, key: key, amount: try r.u64("delayed amount"), toStake: try r.u8("delayed kind") == 1))
        }
        var heads: [PublicKey: (height: UInt64, hash: Digest32)] = [:]
        for _ in 0..<(try r.u32("heads")) {
            let owner = try PublicKey(bytes: r.fixed(32, "head owner"))
            heads[owner] = (try r.u64("head height"), try Digest32(bytes: r.fixed(32, "head hash")))
        }
        try r.finish()
        let state = StakeState(accounts: accounts, delayed: delayed, heads: heads)
        return AnchorChain.Entry(block: nil, hash: hash, parent: nil, height: height, time: time, target: target, modifier: modifier,
                                 kernel: kernel, spacing: spacing, weight: weight, state: state)
    }
}
