public import FlowchainCrypto
public import LedgerModel

/// Who may mint, with how much, after a given block: stakes, balances, nonces, delayed bonds and
/// unbonds, and the newest segment head committed for each node.
public struct StakeState: Sendable, Equatable {
    public struct Account: Sendable, Equatable {
        public var stake: UInt64
        public var balance: UInt64
        public var nonce: UInt64
    }

    struct Delayed: Sendable, Equatable {
        let at: UInt64
        let key: PublicKey
        let amount: UInt64
        let toStake: Bool
    }

    public private(set) var accounts: [PublicKey: Account]
    var delayed: [Delayed] = []
    /// Newest committed segment head per owner: (height, hash).
    public private(set) var heads: [PublicKey: (height: UInt64, hash: Digest32)] = [:]

    init(accounts: [PublicKey: Account], delayed: [Delayed], heads: [PublicKey: (height: UInt64, hash: Digest32)]) {
        self.accounts = accounts
        self.delayed = delayed
        self.heads = heads
    }

    public init(genesis: Genesis) {
        accounts = Dictionary(uniqueKeysWithValues: genesis.accounts.map { ($0.key, Account(stake: $0.stake, balance: $0.balance, nonce: 0)) })
    }

    public func stake(of key: PublicKey) -> UInt64 { accounts[key]?.stake ?? 0 }

    public static func == (a: StakeState, b: StakeState) -> Bool {
        a.accounts == b.accounts && a.delayed == b.delayed && a.heads.mapValues { "\($0.height):\($0.hash)" } == b.heads.mapValues { "\($0.height):\($0.hash)" }
    }

    /// The state after `block` (at `height`), or the rule it breaks.
    func applying(_ block: AnchorBlock, chain: Digest32, bondDelay: UInt32, verifySignatures: Bool) throws(AnchorViolation) -> StakeState {
        var next = self
        let h = block.height
        // Matured bonds and unbonds take effect first.
        for d in next.delayed where d.at <= h {
            var a = next.accounts[d.key] ?? Account(stake: 0, balance: 0, nonce: 0)
            // Cannot overflow: the genesis total fits in 64 bits and bonds only move value.
            if d.toStake { a.stake = a.stake.addingReportingOverflow(d.amount).overflow ? .max : a.stake + d.amount }
            else { a.balance = a.balance.addingReportingOverflow(d.amount).overflow ? .max : a.balance + d.amount }
            next.accounts[d.key] = a
        }
        next.delayed.removeAll { $0.at <= h }

        for (i, r) in block.records.enumerated() {
            guard r.chain == chain else { throw AnchorViolation(height: h, "record \(i) is for another chain") }
            guard var a = next.accounts[r.key] else { throw AnchorViolation(height: h, "record \(i): unknown staker \(r.key)") }
            guard r.nonce == a.nonce + 1 else { throw AnchorViolation(height: h, "record \(i): nonce \(r.nonce) is not \(a.nonce + 1) (replayed or out of order)") }
            guard r.amount > 0 else { throw AnchorViolation(height: h, "record \(i): amount is zero") }
            if verifySignatures, !r.hasValidSignature { throw AnchorViolation(height: h, "record \(i): signature does not verify") }
            switch r.kind {
            case .bond:
                guard a.balance >= r.amount else { throw AnchorViolation(height: h, "record \(i): bonds \(r.amount) but the balance is \(a.balance) (spent twice?)") }
                a.balance -= r.amount
                next.delayed.append(Delayed(at: h + UInt64(bondDelay), key: r.key, amount: r.amount, toStake: true))
            case .unbond:
                guard a.stake >= r.amount else { throw AnchorViolation(height: h, "record \(i): unbonds \(r.amount) but the stake is \(a.stake) (spent twice?)") }
                a.stake -= r.amount
                next.delayed.append(Delayed(at: h + UInt64(bondDelay), key: r.key, amount: r.amount, toStake: false))
            }
            a.nonce = r.nonce
            next.accounts[r.key] = a
        }

        var owners = Set<PublicKey>()
        for (i, head) in block.heads.enumerated() {
            guard owners.insert(head.owner).inserted else { throw AnchorViolation(height: h, "head \(i): a second head for owner \(head.owner)") }
            guard head.count > 0 else { throw AnchorViolation(height: h, "head \(i): an empty segment block") }
            if let known = next.heads[head.owner], head.height <= known.height {
                throw AnchorViolation(height: h, "head \(i): segment height \(head.height) is not above the committed \(known.height)")
            }
            if verifySignatures, !head.hasValidSignature { throw AnchorViolation(height: h, "head \(i): not signed by its owner \(head.owner)") }
            next.heads[head.owner] = (head.height, head.hash)
        }
        return next
    }
}

/// A block that breaks a rule, naming the height and the rule.
public struct AnchorViolation: Error, Equatable, Sendable, CustomStringConvertible {
    public let height: UInt64
    public let rule: String
    public init(height: UInt64, _ rule: String) {
        self.height = height
        self.rule = rule
    }
    public var description: String { "anchor block \(height): \(rule)" }
}
