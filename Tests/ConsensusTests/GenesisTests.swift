import Consensus
import FlowchainCrypto
import FlowchainTesting
import Foundation
import Testing

@Suite("Genesis files")
struct GenesisTests {
    @Test func aFileRoundTripsAndKeepsItsHash() throws {
        let g = Genesis(chainID: "farm", time: 1_764_000_000, anchorInterval: 10, bondDelay: 5,
                        accounts: [.init(key: Fixtures.key(1).publicKey, stake: 3, balance: 7), .init(key: Fixtures.key(2).publicKey, stake: 5)])
        let dir = TemporaryDirectory()
        try g.write(to: dir.file("genesis.json"))
        let loaded = try Genesis.load(dir.file("genesis.json"))
        #expect(loaded == g && loaded.hash == g.hash)
    }

    @Test func theInitialTargetGivesOneBlockPerIntervalAcrossAllStake() {
        let g = Genesis(chainID: "x", time: 0, anchorInterval: 10, accounts: [.init(key: Fixtures.key(1).publicKey, stake: 1000)])
        // p(block per second) = target · stake / 2^256 = 1/10.
        let p = g.initialTarget.approximate * 1000 / UInt256.max.approximate
        #expect(abs(p - 0.1) < 1e-9)
    }

    @Test(arguments: [
        (#"{"format":"flowchain-genesis/1","chainID":"","time":0,"anchorInterval":10,"bondDelay":1,"accounts":[]}"#, "chainID must be"),
        (#"{"format":"flowchain-genesis/1","chainID":"c","time":0,"anchorInterval":10,"bondDelay":1,"accounts":[]}"#, "at least one account"),
        (#"{"format":"flowchain-genesis/1","chainID":"c","time":0,"anchorInterval":10,"bondDelay":1,"accounts":[{"key":"zz","stake":1}]}"#, "accounts[0].key"),
        (#"{"format":"flowchain-genesis/1","chainID":"c","time":0,"anchorInterval":10,"bondDelay":1,"accounts":[{"key":"0101010101010101010101010101010101010101010101010101010101010101","stake":0}]}"#, "no account has stake"),
        (#"{"format":"other","chainID":"c","time":0,"anchorInterval":10,"bondDelay":1,"accounts":[]}"#, "format must be"),
        (#"{"format":"flowchain-genesis/1","chainID":"c","time":0,"anchorInterval":10,"bondDelay":1,"accounts":[{"key":"0101010101010101010101010101010101010101010101010101010101010101","stake":18446744073709551615},{"key":"0202020202020202020202020202020202020202020202020202020202020202","stake":1}]}"#, "exceed 2^64"),
        (#"{"format":"flowchain-genesis/1","chainID":"c","time":0,"anchorInterval":10,"bondDelay":1,"accounts":[{"key":"0101010101010101010101010101010101010101010101010101010101010101","stake":1,"balance":18446744073709551615}]}"#, "exceed 2^64"),
    ])
    func badFilesNameTheProblem(json: String, expected: String) throws {
        let dir = TemporaryDirectory()
        try json.write(toFile: dir.file("g.json"), atomically: true, encoding: .utf8)
        #expect { try Genesis.load(dir.file("g.json")) } throws: { "\($0)".contains(expected) }
    }
}
