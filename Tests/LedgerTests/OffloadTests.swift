import FlowchainTesting
import Foundation
@testable import Ledger
import Synchronization
import Testing

@Suite("Offloaded store work: one store's long jobs do not hold another's")
struct OffloadTests {
    final class Flags: Sendable {
        let released = Atomic<Bool>(false)
        let running = Atomic<Int>(0)
        let endedFirst = Atomic<Int>(0)
    }

    /// Long computing jobs on one store (more of them than this machine has cores) must not keep
    /// another store's short read waiting until they end: the node's own ledger answers while a
    /// copy of a peer's chain is pruned or caught up. The long jobs run until the short read is
    /// done (or 60 s): if the read had to wait for them, they would all have ended first.
    @Test func aShortReadOnOneStoreIsNotQueuedBehindAnotherStoresLongJobs() async throws {
        let dir = TemporaryDirectory()
        let flags = Flags()
        let busy = try LedgerStore(path: dir.file("busy.sqlite"), owner: nil)
        let other = try LedgerStore(path: dir.file("other.sqlite"), owner: nil)
        let long = max(4, ProcessInfo.processInfo.activeProcessorCount * 2)
        let jobs = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<long {
                    group.addTask {
                        try await busy.offload { _ in
                            flags.running.add(1, ordering: .relaxed)
                            let deadline = ContinuousClock.now + .seconds(60)
                            var spins = 0
                            while !flags.released.load(ordering: .acquiring), ContinuousClock.now < deadline { spins &+= 1 }
                            if !flags.released.load(ordering: .acquiring) { flags.endedFirst.add(1, ordering: .relaxed) }
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        // Wait until the long jobs hold their threads (bounded: 60 s).
        let started = ContinuousClock.now + .seconds(60)
        while flags.running.load(ordering: .relaxed) == 0, ContinuousClock.now < started { try await Task.sleep(for: .milliseconds(10)) }
        #expect(flags.running.load(ordering: .relaxed) > 0)

        let tip = try await other.offload { try $0.tip() }
        flags.released.store(true, ordering: .releasing)
        try await jobs.value
        #expect(tip == nil)
        #expect(flags.endedFirst.load(ordering: .relaxed) == 0, "the read on the other store waited until the long jobs gave up")
        try busy.close()
        try other.close()
    }
}
