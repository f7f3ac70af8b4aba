import FlowchainCrypto
import FlowchainTesting
import Foundation
import Ledger
import Testing

/// A damaged database must stop the store with an error naming the damage, and be left as it was.
@Suite("Corrupted and truncated databases")
struct CorruptionTests {
    static let key = Fixtures.key(6)

    /// A closed ledger of 5 blocks × 10 readings; returns its path and the readings.
    static func ledger(_ dir: TemporaryDirectory) throws -> (String, [Reading]) {
        let path = dir.file("ledger.sqlite")
        let store = try LedgerStore(path: path, owner: key.publicKey)
        var all: [Reading] = []
        for b in 0..<5 {
            let readings = try (1...10).map { try Fixtures.reading(key, seq: UInt64(b * 10 + $0), payload: "{\"n\":\(b * 10 + $0)}") }
            _ = try store.commitSync(readings)
            _ = try store.cutBlockSync(signedBy: key, now: Int64(b), maxReadings: 100)
            all += readings
        }
        try store.close()
        #expect(!FileManager.default.fileExists(atPath: path + "-wal") || ((try? FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int) ?? 0) == 0)
        return (path, all)
    }

    static func flip(_ path: String, find needle: [UInt8], offset: Int = 0) throws {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let index = try #require(bytes.firstRange(of: needle)?.lowerBound, "bytes to flip not found in the file")
        bytes[index + offset] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    static func openError(_ path: String) -> String? {
        do {
            _ = try LedgerStore(path: path, owner: key.publicKey)
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test func aFlippedByteInAStoredReadingNamesTheBlock() throws {
        let dir = TemporaryDirectory()
        let (path, readings) = try Self.ledger(dir)
        try Self.flip(path, find: readings[45].signature, offset: 3)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        let error = try #require(Self.openError(path))
        #expect(error.contains("block 4") && (error.contains("invalid signature") || error.contains("Merkle")), "\(error)")
        #expect(error.contains("refusing to run"))
        let after = try Data(contentsOf: URL(fileURLWithPath: path))
        let changed = zip(before, after).enumerated().filter { $0.element.0 != $0.element.1 }.map(\.offset)
        #expect(changed.isEmpty && before.count == after.count, "a failed open must not modify the file: offsets \(changed.prefix(20)), sizes \(before.count) \(after.count)")
    }

    @Test func aFlippedByteInABlockHeaderIsFound() throws {
        let dir = TemporaryDirectory()
        let (path, _) = try Self.ledger(dir)
        let store = try LedgerStore(path: path, owner: Self.key.publicKey)
        let header = try #require(try store.block(height: 3))
        try store.close()
        try Self.flip(path, find: header.signature, offset: 5)
        let error = try #require(Self.openError(path))
        #expect(error.contains("block 3") && error.contains("signature does not verify"), "\(error)")
    }

    @Test func aDamagedFileHeaderIsReportedAsCorruption() throws {
        let dir = TemporaryDirectory()
        let (path, _) = try Self.ledger(dir)
        try Self.flip(path, find: Array("SQLite format 3".utf8), offset: 2)
        let error = try #require(Self.openError(path))
        #expect(error.contains("is corrupted") && error.contains("SQLite"), "\(error)")
    }

    @Test(arguments: [0.5, 0.8])
    func aTruncatedFileIsRefused(fraction: Double) throws {
        let dir = TemporaryDirectory()
        let (path, _) = try Self.ledger(dir)
        let size = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        truncate(path, off_t(Double(size) * fraction))
        let error = try #require(Self.openError(path), "a truncated database opened without error")
        #expect(error.contains("corrupted") || error.contains("does not verify"), "\(error)")
    }

    @Test func aFullCheckFindsDamageBeyondTheTail() throws {
        let dir = TemporaryDirectory()
        let (path, readings) = try Self.ledger(dir)
        try Self.flip(path, find: readings[3].signature, offset: 0)
        // Block 0 is outside a 2-block tail check, so open succeeds; the full check must not.
        let store = try LedgerStore(path: path, owner: Self.key.publicKey, tailCheck: 2)
        #expect {
            try store.verifyAll()
        } throws: { error in
            "\(error)".contains("block 0")
        }
    }
}
