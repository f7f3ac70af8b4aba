import FlowchainCrypto
import Testing

@Suite("SHA-256 and SHA-1 against FIPS 180 vectors")
struct DigestTests {
    @Test(arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
    ])
    func sha256(input: String, expected: String) {
        #expect(SHA256.hash(Array(input.utf8)).hex == expected)
    }

    @Test func sha256OfOneMillionA() {
        let input = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        #expect(SHA256.hash(input).hex == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func incrementalEqualsOneShot() {
        let data = Array("The quick brown fox jumps over the lazy dog".utf8)
        for split in [0, 1, 10, data.count] {
            var h = SHA256.Hasher()
            h.update(Array(data[..<split]))
            h.update(Array(data[split...]))
            #expect(h.finalize() == SHA256.hash(data))
        }
    }

    @Test(arguments: [
        ("", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
        ("abc", "a9993e364706816aba3e25717850c26c9cd0d89d"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "84983e441c3bd26ebaae4aa1f95129e5e54670f1"),
    ])
    func sha1(input: String, expected: String) {
        #expect(Hex.encode(SHA1.hash(Array(input.utf8))) == expected)
    }

    @Test func hexRoundTripAndRejects() {
        let bytes: [UInt8] = [0, 1, 0x7f, 0x80, 0xfe, 0xff]
        #expect(Hex.decode(Hex.encode(bytes)) == bytes)
        #expect(Hex.decode("ABcd") == [0xab, 0xcd])
        #expect(Hex.decode("abc") == nil)
        #expect(Hex.decode("zz") == nil)
        #expect(Digest32(hex: String(repeating: "0", count: 62)) == nil)
    }

    @Test func digestOrderIsBigEndianNumeric() throws {
        var low = [UInt8](repeating: 0, count: 32); low[31] = 0xff
        var high = [UInt8](repeating: 0, count: 32); high[0] = 0x01
        #expect(try Digest32(bytes: low) < Digest32(bytes: high))
        #expect(!(try Digest32(bytes: high) < Digest32(bytes: low)))
    }
}
