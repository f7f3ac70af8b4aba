@testable import FlowchainCrypto
import Foundation
import Testing

@Suite("Ed25519 edge cases: Wycheproof vectors and small-order points")
struct Ed25519EdgeCaseTests {
    /// The identity point's encoding (y = 1), the simplest small-order point.
    static let identity = [UInt8(1)] + [UInt8](repeating: 0, count: 31)

    struct WycheproofVector: Sendable, CustomTestStringConvertible {
        let id: Int, key: [UInt8], message: [UInt8], signature: [UInt8], valid: Bool, flags: [String]
        var testDescription: String { "tcId \(id) \(flags.joined(separator: ","))" }
    }

    static func wycheproof() throws -> [WycheproofVector] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/wycheproof/ed25519_test.json")
        let root = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        var out: [WycheproofVector] = []
        for group in root["testGroups"] as! [[String: Any]] {
            let key = Hex.decode((group["publicKey"] as! [String: Any])["pk"] as! String)!
            for t in group["tests"] as! [[String: Any]] {
                out.append(WycheproofVector(
                    id: t["tcId"] as! Int, key: key, message: Hex.decode(t["msg"] as! String)!,
                    signature: Hex.decode(t["sig"] as! String) ?? [], valid: (t["result"] as! String) == "valid",
                    flags: t["flags"] as! [String]))
            }
        }
        return out
    }

    @Test func everyWycheproofVectorGetsItsExpectedResult() throws {
        let vectors = try Self.wycheproof()
        #expect(vectors.count == 151)
        var wrong: [String] = []
        for v in vectors {
            let key = try PublicKey(bytes: v.key)
            if key.isValidSignature(v.signature, for: v.message) != v.valid { wrong.append(v.testDescription) }
        }
        #expect(wrong.isEmpty, "vectors with the wrong result: \(wrong)")
        // Both outcomes are exercised: the fixture is not all-valid or all-invalid.
        #expect(vectors.contains { $0.valid } && vectors.contains { !$0.valid })
    }

    @Test func theIdentityKeyWithAZeroSignatureIsRefused() throws {
        // R = identity, S = 0 satisfies [S]B = R + [k]A for A = identity and any message:
        // a "signature" that needs no private key.
        let key = try PublicKey(bytes: Self.identity)
        let signature = Self.identity + [UInt8](repeating: 0, count: 32)
        let message = Array("any message at all".utf8)
        #expect(key.isValidSignatureOpenSSL(signature, for: message), "the reference verifier accepts it (why libsodium is used)")
        #expect(!key.isValidSignature(signature, for: message))
        #expect(!key.isAcceptable)
    }

    @Test func smallOrderRIsRefusedWithAnHonestKey() throws {
        let honest = try PrivateKey()
        let signature = Self.identity + [UInt8](repeating: 0, count: 32)
        #expect(!honest.publicKey.isValidSignature(signature, for: [1, 2, 3]))
        #expect(honest.publicKey.isAcceptable)
    }

    @Test func nonCanonicalSIsRefused() throws {
        let key = try PrivateKey()
        let message = Array("reading".utf8)
        var signature = try key.sign(message)
        #expect(key.publicKey.isValidSignature(signature, for: message))
        // S + L, where L is the group order: the same point, a second encoding.
        let order: [UInt8] = [0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
                              0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10]
        var carry = 0
        for i in 0..<32 {
            let sum = Int(signature[32 + i]) + Int(order[i]) + carry
            signature[32 + i] = UInt8(sum & 0xff)
            carry = sum >> 8
        }
        #expect(!key.publicKey.isValidSignature(signature, for: message))
    }
}
