import FlowchainCrypto
import FlowchainTesting
import Foundation
import Ledger
import Testing

@Suite("Devices own their records")
struct DeviceOwnershipTests {
    static let node = Fixtures.key(21)
    static let device = Fixtures.key(22)
    static let stranger = Fixtures.key(23)

    func engine(_ dir: TemporaryDirectory) throws -> IngestEngine {
        let store = try LedgerStore(path: dir.file("ledger.sqlite"), owner: Self.node.publicKey)
        return try IngestEngine(store: store, key: Self.node, now: { 1_000 }).running()
    }

    @Test func aDeviceIsBoundToTheKeyOfItsFirstReading() async throws {
        let dir = TemporaryDirectory()
        let engine = try engine(dir)
        _ = try await engine.submit(try Fixtures.reading(Self.device, device: "kitchen", seq: 1))
        #expect(try engine.store.device("kitchen")?.signer == Self.device.publicKey)
        #expect(try engine.store.device("kitchen")?.boundBy == .firstUse)
        let forged = try Fixtures.reading(Self.stranger, device: "kitchen", seq: 2)
        await #expect(throws: IngestError.wrongSigner(device: "kitchen", signer: Self.stranger.publicKey.hex, bound: Self.device.publicKey.hex)) {
            try await engine.submit(forged)
        }
        // The node signing on the device's behalf is another key too: the shared token cannot write for it.
        await #expect(throws: IngestError.wrongSigner(device: "kitchen", signer: Self.node.publicKey.hex, bound: Self.device.publicKey.hex)) {
            try await engine.ingest(.unsigned(device: "kitchen", payload: Array("{}".utf8), time: nil, timeQuality: .synced, source: .ws))
        }
        #expect(try await engine.submit(try Fixtures.reading(Self.device, device: "kitchen", seq: 2)).seq == 2)
        #expect(try engine.store.counts().readings == 2)
    }

    @Test func aRegisteredKeyIsTheOnlyOneAcceptedAndReKeyingIsExplicit() async throws {
        let dir = TemporaryDirectory()
        let engine = try engine(dir)
        let store = engine.store
        try store.register(device: "porch", key: Self.device.publicKey, now: 5)
        await #expect(throws: IngestError.self) { try await engine.submit(try Fixtures.reading(Self.stranger, device: "porch", seq: 1)) }
        #expect(throws: DeviceRegistrationError.boundToAnotherKey(device: "porch", bound: Self.device.publicKey.hex)) {
            try store.register(device: "porch", key: Self.stranger.publicKey, now: 6)
        }
        try store.register(device: "porch", key: Self.device.publicKey, now: 7)   // the same key again: a no-op
        _ = try await engine.submit(try Fixtures.reading(Self.device, device: "porch", seq: 1))
        let (old, record) = try store.rekey(device: "porch", key: Self.stranger.publicKey, now: 8)
        #expect(old == Self.device.publicKey && record.boundBy == .rekey && record.signer == Self.stranger.publicKey)
        await #expect(throws: IngestError.self) { try await engine.submit(try Fixtures.reading(Self.device, device: "porch", seq: 2)) }
        #expect(try await engine.submit(try Fixtures.reading(Self.stranger, device: "porch", seq: 2)).seq == 2)
    }

    @Test func smallOrderKeysCannotBeRegisteredOrSign() async throws {
        let dir = TemporaryDirectory()
        let engine = try engine(dir)
        let identity = try PublicKey(bytes: [1] + [UInt8](repeating: 0, count: 31))
        #expect(throws: DeviceRegistrationError.unacceptableKey(identity.hex)) {
            try engine.store.register(device: "ghost", key: identity, now: 1)
        }
        // R = identity, S = 0 "verifies" for the identity key under a lenient verifier.
        let forged = try Reading(device: "ghost", seq: 1, time: 1, timeQuality: .synced, source: .rpc, payload: Array("{}".utf8),
                                 signer: identity, signature: [1] + [UInt8](repeating: 0, count: 63))
        await #expect(throws: IngestError.badSignature(signer: identity.hex)) { try await engine.submit(forged) }
        #expect(try engine.store.counts().readings == 0)
    }

    @Test func seqMayNotJumpFarEnoughToLockADeviceOut() async throws {
        let dir = TemporaryDirectory()
        let engine = try engine(dir)
        let jump = LedgerStore.maxSeqJump
        for seq in [UInt64(Int64.max), jump + 1] {
            await #expect(throws: IngestError.seqTooFar(device: "meter", seq: seq, last: 0)) {
                try await engine.submit(try Fixtures.reading(Self.device, device: "meter", seq: seq))
            }
        }
        _ = try await engine.submit(try Fixtures.reading(Self.device, device: "meter", seq: jump))
        await #expect(throws: IngestError.seqTooFar(device: "meter", seq: 2 * jump + 1, last: jump)) {
            try await engine.submit(try Fixtures.reading(Self.device, device: "meter", seq: 2 * jump + 1))
        }
        #expect(try await engine.submit(try Fixtures.reading(Self.device, device: "meter", seq: 2 * jump)).seq == 2 * jump)
    }

    @Test func aReSignedCopyIsTheSameReading() async throws {
        let dir = TemporaryDirectory()
        let engine = try engine(dir)
        let reading = try Fixtures.reading(Self.device, device: "twice", seq: 1)
        let copy = try Fixtures.resigned(reading, key: Self.device)
        #expect(copy.signature != reading.signature && copy.hasValidSignature, "a genuinely different, valid signature")
        #expect(copy.id == reading.id)
        let first = try await engine.submit(reading)
        let second = try await engine.submit(copy)
        #expect(first == second)
        #expect(try engine.store.counts().readings == 1)
    }

    @Test func deviceTokensAreStoredAsHashesAndMatchOnlyThemselves() throws {
        let dir = TemporaryDirectory()
        let store = try LedgerStore(path: dir.file("ledger.sqlite"), owner: Self.node.publicKey)
        let token = try store.issueToken(device: "gate", now: 1)
        let record = try #require(try store.device("gate"))
        #expect(record.acceptsToken(token) && !record.acceptsToken(token + "x") && !record.acceptsToken(nil))
        #expect(record.tokenHash == SHA256.hash(Array(token.utf8)), "only the hash is kept")
        let rotated = try store.issueToken(device: "gate", now: 2)
        #expect(try store.device("gate")?.acceptsToken(token) == false && store.device("gate")?.acceptsToken(rotated) == true)
    }
}
