// The ledger's pure parts (readings, blocks, encoding, Merkle proofs, chain rules, JSON) live in
// `LedgerModel`, so that `Consensus` can use them without SQLite; users of `Ledger` see them too.
@_exported import LedgerModel
