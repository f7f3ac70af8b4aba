import FlowchainCrypto
import FlowchainTesting
import Foundation
import Ledger
import PeerNetwork
import Testing

@Suite("Copies of other nodes' chains: one store per owner")
struct ReplicaStoresTests {
    /// Many callers asking for one new copy at once (a replication batch arriving while queries,
    /// retention and the copy keeper ask) all get the one store; before, two could open the new
    /// file at once, both run its migrations, and the second refuse the batch ("table meta
    /// already exists").
    @Test func concurrentFirstOpensOfOneCopyShareOneStore() async throws {
        for round in 0..<8 {
            let dir = TemporaryDirectory()
            let stores = ReplicaStores(directory: dir.file("replicas"))
            let owner = try PrivateKey(seed: [UInt8](repeating: UInt8(round + 1), count: 32)).publicKey
            let opened = try await withThrowingTaskGroup(of: ObjectIdentifier?.self) { group in
                for i in 0..<8 {
                    group.addTask {
                        // Some create it, the others only look once the file exists, as queries do.
                        try await Task.detached { try stores.store(for: owner, create: i % 2 == 0).map(ObjectIdentifier.init) }.value
                    }
                }
                return try await group.reduce(into: Set<ObjectIdentifier>()) { if let id = $1 { $0.insert(id) } }
            }
            #expect(opened.count == 1, "round \(round): \(opened.count) stores for one copy")
            #expect(stores.owners() == [owner])
        }
    }
}
