import FlowchainCrypto
import FlowchainTesting
import FlowchainWire
import Foundation
import LedgerModel
import Testing

@Suite("Reading wire shapes")
struct ReadingWireTests {
    static let device = Fixtures.key(7)

    func submission(_ json: String, device: String? = nil) throws(WireError) -> Submission {
        guard let object = (try? JSONValue(parsing: Array(json.utf8)))?.objectValue else { throw .invalid("test input is not an object") }
        return try ReadingWire.submission(from: object, device: device, defaultSource: .rpc)
    }

    @Test func anUnsignedPayloadKeepsItsNumbersAsWrittenWithSortedKeys() throws {
        guard case let .unsigned(device, payload, time, quality, source) = try submission(#"{"device":"d1","payload":{"t":21.50,"a":1e3,"big":12345678901234567890},"time":5,"timeSynced":false}"#) else {
            Issue.record("not unsigned"); return
        }
        #expect(device == "d1" && time == 5 && quality == .unsynced && source == .rpc)
        #expect(String(decoding: payload, as: UTF8.self) == #"{"a":1e3,"big":12345678901234567890,"t":21.50}"#)
    }

    @Test func aSignedReadingKeepsTheExactPayloadTextItsSignatureCovers() throws {
        let r = try Reading(device: "signed", seq: 3, time: 9, source: .ws, payload: Array(#"{ "z":1, "a":2 }"#.utf8), signedBy: Self.device)
        let wire = #"{"device":"signed","seq":3,"time":9,"source":"ws","payload":"{ \"z\":1, \"a\":2 }","signer":"\#(r.signer.hex)","signature":"\#(Hex.encode(r.signature))"}"#
        guard case let .signed(parsed) = try submission(wire) else { Issue.record("not signed"); return }
        #expect(parsed == r && parsed.hasValidSignature)
        guard case let .signed(encoded) = try submission(#"{"encoded":"\#(Hex.encode(r.encoded))"}"#) else { Issue.record("not signed"); return }
        #expect(encoded.id == r.id)
    }

    @Test(arguments: [
        (#"{"payload":{"x":1}}"#, "missing 'device'"),
        (#"{"device":5,"payload":{"x":1}}"#, "'device' must be a string"),
        (#"{"device":"a b","payload":{"x":1}}"#, "device"),
        (#"{"device":"d","payload":[1]}"#, "'payload' must be a JSON object"),
        (#"{"device":"d"}"#, "missing 'payload'"),
        (#"{"device":"d","payload":{},"time":1.5}"#, "'time' must be an integer"),
        (#"{"device":"d","payload":{},"time":99999999999999999999}"#, "'time' is out of range"),
        (#"{"encoded":"zz"}"#, "'encoded' must be a hex string"),
        (#"{"device":"d","signature":"00","payload":{}}"#, "carries 'payload' as a string"),
    ])
    func badShapesAreNamed(json: String, expected: String) {
        #expect(throws: WireError.self) { try submission(json) }
        do { _ = try submission(json) } catch { #expect(error.description.contains(expected), "\(json): \(error)") }
    }

    @Test func theEndpointsDeviceMustMatchTheReadings() throws {
        #expect(throws: WireError.invalid("'device' is 'a' but this endpoint is for 'b'")) { try submission(#"{"device":"a","payload":{}}"#, device: "b") }
        #expect(try submission(#"{"payload":{}}"#, device: "b").device == "b")
    }

    @Test func aStoredReadingRoundTripsThroughItsWireShape() throws {
        let r = try Fixtures.reading(Self.device, device: "rt", seq: 4, payload: #"{"b":[true,null],"a":-0.5}"#)
        let stored = StoredReading(reading: r, rowid: 17, block: 2, leaf: 1)
        var w = JSONWriter()
        ReadingWire.write(stored, into: &w)
        let record = try ReadingRecord(wire: try JSONValue(parsing: w.bytes))
        #expect(record == ReadingRecord(stored))
        #expect(record.payload == ["a": -0.5, "b": [true, .null]] && record.cursor == 17 && record.block == 2)
        var again = JSONWriter()
        ReadingWire.write(record, into: &again)
        #expect(try JSONValue(parsing: again.bytes) == JSONValue(parsing: w.bytes), "record and stored reading write the same JSON")
    }

    @Test func aBlockHeaderMustHashToWhatItClaims() throws {
        let header = try BlockHeader(height: 3, prev: SHA256.hash([1]), time: 5, merkleRoot: SHA256.hash([2]), count: 7, signedBy: Self.device)
        var w = JSONWriter()
        ReadingWire.write(header, into: &w)
        let decoded = try ReadingWire.blockHeader(from: try JSONValue(parsing: w.bytes))
        #expect(decoded == header && decoded.hasValidSignature)
        let forged = w.text.replacingOccurrences(of: #""count":7"#, with: #""count":8"#)
        #expect(throws: WireError.self) { try ReadingWire.blockHeader(from: try JSONValue(parsing: Array(forged.utf8))) }
    }
}
