import FlowchainCrypto
import FlowchainTesting
@testable import Ledger
import Testing

@Suite("Canonical encoding")
struct EncodingTests {
    static let key = Fixtures.key(1)

    static func randomReading(_ rng: inout SeededRandom) throws -> Reading {
        let payloadLength = Int.random(in: 0...300, using: &rng)
        let payload = "{\"v\":\"" + String((0..<payloadLength).map { _ in Character(UnicodeScalar(UInt8.random(in: 0x61...0x7a, using: &rng))) }) + "\"}"
        return try Reading(
            device: rng.deviceID(),
            seq: UInt64.random(in: 0...UInt64.max, using: &rng),
            time: Int64.random(in: Int64.min...Int64.max, using: &rng),
            timeQuality: Bool.random(using: &rng) ? .synced : .unsynced,
            source: ReadingSource.allCases.randomElement(using: &rng)!,
            payload: Array(payload.utf8),
            signedBy: key)
    }

    @Test func readingRoundTripProperty() throws {
        var rng = SeededRandom(seed: 0xF10C)
        for _ in 0..<300 {
            let r = try Self.randomReading(&rng)
            let decoded = try Reading(encoded: r.encoded)
            #expect(decoded == r)
            #expect(decoded.id == r.id)
            #expect(decoded.hasValidSignature)
        }
    }

    @Test func headerRoundTripProperty() throws {
        var rng = SeededRandom(seed: 7)
        for _ in 0..<200 {
            let h = try BlockHeader(
                height: UInt64.random(in: 0...UInt64.max, using: &rng),
                prev: Digest32(bytes: rng.bytes(32)),
                time: Int64.random(in: Int64.min...Int64.max, using: &rng),
                merkleRoot: Digest32(bytes: rng.bytes(32)),
                count: UInt32.random(in: 1...UInt32.max, using: &rng),
                signedBy: Self.key)
            let decoded = try BlockHeader(encoded: h.encoded)
            #expect(decoded == h)
            #expect(decoded.hash == h.hash)
            #expect(decoded.hasValidSignature)
        }
    }

    @Test func encodingIsDeterministicAndBigEndian() throws {
        let r = try Fixtures.reading(Self.key, device: "d", seq: 0x0102030405060708, time: 1)
        #expect(r.encoded[0] == 1)                       // version
        #expect(r.encoded[1] == 1 && r.encoded[2] == UInt8(ascii: "d"))
        #expect(Array(r.encoded[3..<11]) == [1, 2, 3, 4, 5, 6, 7, 8])
        let again = try Fixtures.reading(Self.key, device: "d", seq: 0x0102030405060708, time: 1)
        #expect(again.encoded == r.encoded)
        #expect(again.id == SHA256.hash(Array(r.body)), "the id covers the signed body, not the signature")
    }

    @Test func everyTruncationIsRejectedNamingTheField() throws {
        let r = try Fixtures.reading(Self.key, seq: 1)
        for n in 0..<r.encoded.count {
            do {
                _ = try Reading(encoded: Array(r.encoded.prefix(n)))
                Issue.record("a \(n)-byte prefix decoded")
            } catch let DecodingError.truncated(field, _, _) {
                #expect(!field.isEmpty)
            }
        }
        #expect(throws: DecodingError.truncated(field: "version", needed: 1, available: 0)) { try Reading(encoded: []) }
        #expect(throws: DecodingError.truncated(field: "signature", needed: 64, available: 63)) {
            try Reading(encoded: Array(r.encoded.dropLast()))
        }
    }

    @Test func trailingBytesAreRejected() throws {
        let r = try Fixtures.reading(Self.key, seq: 1)
        #expect(throws: DecodingError.trailingBytes(count: 2)) { try Reading(encoded: r.encoded + [0, 0]) }
        let h = try BlockHeader(height: 0, prev: .zero, time: 0, merkleRoot: .zero, count: 1, signedBy: Self.key)
        #expect(throws: DecodingError.trailingBytes(count: 1)) { try BlockHeader(encoded: h.encoded + [9]) }
    }

    @Test func oversizeFieldsAreRejectedBeforeReadingThem() throws {
        var w = BinaryWriter()
        w.u8(1); w.u8(65)   // device length 65
        w.fixed([UInt8](repeating: UInt8(ascii: "a"), count: 65))
        #expect(throws: DecodingError.oversize(field: "device", length: 65, limit: 64)) { try Reading(encoded: w.bytes) }

        var p = BinaryWriter()
        p.u8(1); p.short(Array("dev".utf8)); p.u64(1); p.i64(0); p.u8(1); p.u8(3)
        p.u32(UInt32(Reading.maxEncodedPayload + 1))   // claims a payload over 1 MiB
        #expect(throws: DecodingError.oversize(field: "payload", length: Reading.maxEncodedPayload + 1, limit: Reading.maxEncodedPayload)) {
            try Reading(encoded: p.bytes)
        }
    }

    @Test func unknownEnumsAndVersionsAreNamed() throws {
        let r = try Fixtures.reading(Self.key, device: "d", seq: 1)
        var bad = r.encoded
        bad[0] = 2
        #expect(throws: DecodingError.invalid(field: "version", reason: "unsupported version 2, expected 1")) { try Reading(encoded: bad) }
        bad = r.encoded
        bad[19] = 9   // timeQuality: 1 + 2 ("d") + 8 + 8
        #expect(throws: DecodingError.invalid(field: "timeQuality", reason: "unknown value 9")) { try Reading(encoded: bad) }
        bad = r.encoded
        bad[20] = 200
        #expect(throws: DecodingError.invalid(field: "source", reason: "unknown value 200")) { try Reading(encoded: bad) }
    }

    @Test func invalidDeviceIdsAreRejected() throws {
        for bad in ["", "has space", "ünï", String(repeating: "x", count: 65), "a/b"] {
            #expect(DeviceID.problem(with: bad) != nil, "\(bad)")
            #expect(throws: DecodingError.self) { try Fixtures.reading(Self.key, device: bad, seq: 1) }
        }
        #expect(DeviceID.isValid("Temp-Sensor-01"))
        #expect(DeviceID.isValid(String(repeating: "x", count: 64)))
    }

    @Test func garbageNeverCrashesTheDecoder() {
        var rng = SeededRandom(seed: 99)
        for _ in 0..<2000 {
            let bytes = rng.bytes(Int.random(in: 0...400, using: &rng))
            _ = try? Reading(encoded: bytes)
            _ = try? BlockHeader(encoded: bytes)
        }
    }

    @Test func tamperingBreaksTheSignature() throws {
        let r = try Fixtures.reading(Self.key, seq: 5)
        var bytes = r.encoded
        bytes[12] ^= 1   // inside seq
        let tampered = try Reading(encoded: bytes)
        #expect(!tampered.hasValidSignature)
        #expect(tampered.id != r.id)
    }
}
