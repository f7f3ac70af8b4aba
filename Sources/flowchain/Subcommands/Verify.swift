import ArgumentParser
import Consensus
import FlowchainClient
import FlowchainCrypto
import FlowchainNode
import Foundation
import Ledger

struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Prove that a reading is in a signed block of a node's chain, and anchored by stake.",
        discussion: """
            Checks the reading's signature, its Merkle path to the block's root, and the block's \
            signature. Exit status 0 and `valid: …` when all hold; 1 and `invalid: <reason>` \
            otherwise. The output claims only what was checked:

            - the block's signer is "pinned" only with --owner KEY, or when the ledger is this \
              machine's (--data-dir); otherwise it says so;
            - an anchor block counts only when checked against an anchor chain the verifier trusts: \
              --genesis FILE (the chain's genesis) with the anchor blocks the proof carries \
              (`flowchain proof --anchor-chain`), or the anchor chain of the data directory on this \
              machine (--data-dir; also for --proof and --node when it is the proof's chain). \
              Otherwise the output says "anchor not verified" and why. An anchor part that breaks a rule of \
              the trusted chain (e.g. minted by a key without stake) makes the proof invalid.

            Where the proof comes from:
              --data-dir D <id>     the node's ledger on this machine (the id may be a unique prefix of 8+ hex digits)
              --node URL <id>       a running node; the proof is checked here, not trusted
              --proof FILE          a portable proof from `flowchain proof` (- for stdin), fully offline
            """
    )

    @OptionGroup var source: SourceOptions
    @Option(help: ArgumentHelp("A portable proof file (`flowchain proof` output), or - for stdin.", valueName: "file")) var proof: String?
    @Option(help: ArgumentHelp("The node public key (hex) that must have signed the block.", valueName: "key")) var owner: String?
    @Option(help: ArgumentHelp("The anchor chain's genesis file, trusted: the proof's anchor blocks are replayed from it.", valueName: "file"))
    var genesis: String?
    @Argument(help: "The reading id (hex).") var readingID: String?

    func invalid(_ reason: String) -> ExitCode {
        print("invalid: \(reason)")
        return ExitCode(1)
    }

    /// How the anchor part is to be checked.
    enum AnchorTrust {
        case genesis(Genesis, carried: [AnchorBlock]?)
        case chain(AnchorNode)
        case none(String)
    }

    func report(_ proof: ReadingProof, owner: PublicKey?, pinned: Bool, anchored: AnchoredProof?, trust: AnchorTrust) async throws {
        let subject = "reading \(proof.reading.id) (device \(proof.reading.device), seq \(proof.reading.seq))"
        guard case let .valid(height) = proof.verify(owner: owner) else {
            if case let .invalid(reason) = proof.verify(owner: owner) { throw invalid(reason) }
            return
        }
        let signer = proof.block?.owner.hex ?? "?"
        let signed = pinned ? "signed by \(signer)" : "signed by \(signer) (owner not pinned: pass --owner KEY to require the node you expect)"
        let head = "valid: \(subject) is leaf \(proof.merkle?.index ?? 0) of block \(height), \(signed)"
        guard let anchored else {
            print("\(head); no anchor block commits it yet")
            return
        }
        if case let .invalid(reason) = anchored.verify(owner: owner) { throw invalid(reason) }
        let claim = "anchor block \(anchored.anchor.height) (minted by \(anchored.anchor.minter.hex.prefix(16))…)"
        let verdict: AnchoredProof.AnchorVerdict
        let against: String
        switch trust {
        case let .genesis(g, carried):
            verdict = anchored.verifyAnchor(genesis: g, chain: carried, now: Int64(Date().timeIntervalSince1970))
            against = "the genesis \(g.chainID) and the \(carried?.count ?? 0) anchor blocks the proof carries"
        case let .chain(node):
            verdict = await node.verifyAnchor(anchored)
            against = "this data directory's anchor chain"
        case let .none(why):
            verdict = .notVerified(why)
            against = ""
        }
        switch verdict {
        case .verified:
            print("\(head); committed by \(claim), verified against \(against)")
        case let .notVerified(why):
            print("\(head); \(claim) claims to commit it: anchor not verified (\(why))")
        case let .invalid(why):
            throw invalid("the proof's \(claim) does not hold: \(why)")
        }
    }

    func run() async throws {
        var pinned: PublicKey? = nil
        if let owner {
            guard let bytes = Hex.decode(owner), let key = try? PublicKey(bytes: bytes) else { throw invalid("--owner '\(owner)' is not a public key (64 hex digits)") }
            pinned = key
        }
        var trustedGenesis: Genesis? = nil
        if let genesis {
            do { trustedGenesis = try Genesis.load(genesis) } catch { throw invalid("--genesis \(genesis): \(error)") }
        }
        let noTrust = "no trusted anchor chain: pass --genesis FILE (the chain's genesis file) with a proof from `flowchain proof --anchor-chain`, or verify on a node's --data-dir"
        // Without --genesis, the anchor chain of the data directory on this machine (when there is
        // one, and it is the proof's chain) is the trusted one; replayed only when a proof needs it.
        func trust(_ portable: ReadingProof.Portable) throws -> AnchorTrust {
            if let trustedGenesis { return .genesis(trustedGenesis, carried: try AnchoredProof.carriedChain(portable)) }
            guard let anchored = try AnchoredProof(portable: portable) else { return .none(noTrust) }
            guard FileManager.default.fileExists(atPath: DataDirectory(source.data.dataDir).ledgerPath),
                  let local = try? LocalLedger(source.data),
                  let localChain = try local.anchorObserver(), anchored.anchor.chain == localChain.genesisHash else {
                return .none(noTrust)
            }
            return .chain(localChain)
        }
        if let proof {
            let data = proof == "-" ? FileHandle.standardInput.readDataToEndOfFile() : FileManager.default.contents(atPath: proof)
            guard let data else { throw invalid("cannot read \(proof)") }
            let portable: ReadingProof.Portable
            do { portable = try JSONDecoder().decode(ReadingProof.Portable.self, from: data) } catch { throw invalid("\(proof) is not a flowchain proof: \(error)") }
            do {
                let rebuilt = try ReadingProof(portable: portable)
                if let readingID, !rebuilt.reading.id.hex.hasPrefix(readingID.lowercased()) { throw invalid("the proof is for reading \(rebuilt.reading.id), not \(readingID)") }
                try await report(rebuilt, owner: pinned, pinned: pinned != nil, anchored: try AnchoredProof(portable: portable), trust: try trust(portable))
            } catch let e as ExitCode { throw e } catch { throw invalid("\(error)") }
            return
        }
        guard let readingID else { throw invalid("give a reading id, or --proof FILE") }
        if let node = source.remote.node {
            guard let id = Digest32(hex: readingID) else { throw invalid("'\(readingID)' is not a reading id (64 hex digits)") }
            let withChain = trustedGenesis != nil
            let fetched: ReadingProof.Portable
            do {
                let found = try await RPCConnection.with(node, token: source.remote.resolvedToken) {
                    try await RemoteLedger(rpc: $0).proof(of: id, anchorChain: withChain)
                }
                guard let found else { throw invalid("no reading with id \(id) at \(node)") }
                fetched = found
            } catch let e as ExitCode {
                throw e
            } catch {
                throw invalid("\(error)")
            }
            do {
                // The key the node reports is not trusted: the block is checked against --owner only.
                try await report(try ReadingProof(portable: fetched), owner: pinned, pinned: pinned != nil,
                                 anchored: try AnchoredProof(portable: fetched), trust: try trust(fetched))
            } catch let e as ExitCode { throw e } catch { throw invalid("\(error)") }
            return
        }
        guard readingID.count >= 8, readingID.count <= 64, let prefix = Hex.decode(readingID.count % 2 == 0 ? readingID : String(readingID.dropLast())) else {
            throw invalid("'\(readingID)' is not a reading id (8 to 64 hex digits)")
        }
        let local = try LocalLedger(source.data)
        let store = local.store
        do {
            let matches = try store.readings(idPrefix: prefix, limit: 2).filter { $0.reading.id.hex.hasPrefix(readingID.lowercased()) }
            guard let match = matches.first else {
                if let id = Digest32(hex: readingID), let pruned = try store.prunedReading(id: id) {
                    throw invalid("reading \(id) was pruned by retention: its payload is gone; it was leaf \(pruned.leaf) of block \(pruned.block), whose header remains (an archive made with flowchain export can be checked with flowchain check --archive)")
                }
                throw invalid("no reading with id \(readingID) in \(store.path)")
            }
            guard matches.count == 1 else { throw invalid("id prefix \(readingID) is ambiguous; give more digits") }
            guard let proof = try store.proof(for: match.reading.id) else { throw invalid("reading \(readingID) vanished while being read") }
            var anchored: AnchoredProof? = nil
            var trust = AnchorTrust.none("the data directory has no genesis.json")
            if let node = try local.anchorObserver() {
                anchored = try await node.anchored(proof)
                trust = .chain(node)
            }
            try await report(proof, owner: pinned ?? store.owner, pinned: true, anchored: anchored, trust: trust)
        } catch let e as ExitCode {
            throw e
        } catch {
            throw invalid("\(error)")
        }
    }
}
