import FlowchainWire
import Testing
@testable import Chord
import FlowchainTesting

/// The peer transport's binary encoding: round trips, and precise errors for every malformation.
@Suite struct ChordWireTests {
    static let a = NodeRef(id: ChordID.hashing(Array("a".utf8)), address: "ws://10.0.0.1:8000")
    static let b = NodeRef(id: ChordID.hashing(Array("b".utf8)), address: "ws://[::1]:8001")
    static let c = NodeRef(id: ChordID.hashing(Array("c".utf8)))

    static let samples: [ChordPayload] = [
        .request(.findSuccessor(key: ChordID.hashing(Array("k".utf8)))),
        .request(.neighbours), .request(.notify), .request(.ping),
        .request(.leaving(predecessor: b, successors: [c, b])),
        .request(.leaving(predecessor: nil, successors: [])),
        .response(.step(successors: [b, c], closer: [c])),
        .response(.neighbours(predecessor: nil, successors: [b])),
        .response(.neighbours(predecessor: c, successors: [])),
        .response(.ack), .response(.refused("not in a ring")),
    ]

    @Test func everyMessageRoundTrips() throws {
        for (i, p) in Self.samples.enumerated() {
            let e = ChordEnvelope(sender: Self.a, requestID: UInt64(i) << 40 | 7, payload: p)
            #expect(try ChordWire.decode(ChordWire.encode(e)) == e)
        }
    }

    @Test func anIdOfTheWrongLengthIsRefusedWithItsPlace() throws {
        var bytes = ChordWire.encode(ChordEnvelope(sender: Self.a, requestID: 1, payload: .request(.ping)))
        bytes[1] = 19  // sender id length
        #expect(throws: ChordWireError(offset: 1, "sender: an id is 20 bytes, not 19")) { try ChordWire.decode(bytes) }
        // Inside a list too.
        var list = ChordWire.encode(ChordEnvelope(sender: Self.c, requestID: 1, payload: .response(.step(successors: [Self.b], closer: []))))
        let at = 1 + 1 + 20 + 2 + 8 + 1 + 1
        #expect(list[at] == 20)
        list[at] = 32
        #expect(throws: ChordWireError(offset: at, "successors[0]: an id is 20 bytes, not 32")) { try ChordWire.decode(list) }
    }

    @Test func truncationsAndTrailingBytesAreRefused() throws {
        for p in Self.samples {
            let full = ChordWire.encode(ChordEnvelope(sender: Self.b, requestID: 99, payload: p))
            for n in 0..<full.count {
                #expect(throws: ChordWireError.self) { try ChordWire.decode(Array(full.prefix(n))) }
            }
            #expect(throws: ChordWireError(offset: full.count, "1 unexpected byte(s) after the message")) { try ChordWire.decode(full + [0]) }
        }
    }

    @Test func unknownVersionKindAndOversizedListsAreNamed() throws {
        var bytes = ChordWire.encode(ChordEnvelope(sender: Self.c, requestID: 5, payload: .request(.ping)))
        var v = bytes
        v[0] = 2
        #expect(throws: ChordWireError(offset: 0, "unsupported version 2 (this node speaks 1)")) { try ChordWire.decode(v) }
        let kindAt = bytes.count - 1
        bytes[kindAt] = 0x42
        #expect(throws: ChordWireError(offset: kindAt, "unknown message kind 66")) { try ChordWire.decode(bytes) }
        var big = ChordWire.encode(ChordEnvelope(sender: Self.c, requestID: 5, payload: .response(.step(successors: [], closer: []))))
        big[big.count - 2] = 65
        #expect(throws: ChordWireError(offset: big.count - 2, "successors: 65 entries, at most 64")) { try ChordWire.decode(big) }
    }

    @Test func anAddressThatIsNotUTF8IsRefused() throws {
        var bytes = ChordWire.encode(ChordEnvelope(sender: NodeRef(id: Self.c.id, address: "ab"), requestID: 5, payload: .request(.ping)))
        bytes[1 + 1 + 20 + 2] = 0xFF
        #expect(throws: ChordWireError(offset: 24, "sender address is not UTF-8")) { try ChordWire.decode(bytes) }
    }

    @Test func randomCorruptionNeverCrashesAndRoundTripsWhatItAccepts() throws {
        var rng = SeededRandom(seed: 2026)
        var refused = 0
        for i in 0..<5_000 {
            let p = Self.samples[i % Self.samples.count]
            var bytes = ChordWire.encode(ChordEnvelope(sender: Self.a, requestID: UInt64(i), payload: p))
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            do {
                let e = try ChordWire.decode(bytes)
                #expect(ChordWire.encode(e) == bytes)
            } catch {
                refused += 1
            }
        }
        #expect(refused > 1_000)
    }
}
