@testable import FlowchainCrypto
import Foundation
import Testing

@Suite("Ed25519 against RFC 8032 §7.1")
struct Ed25519Tests {
    struct Vector: Sendable, CustomTestStringConvertible {
        let secret: String, publicKey: String, message: String, signature: String
        var testDescription: String { "message of \(message.count / 2) bytes" }
    }

    static let vectors = [
        Vector(
            secret: "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            publicKey: "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            message: "",
            signature: "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
        Vector(
            secret: "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
            publicKey: "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            message: "72",
            signature: "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
        Vector(
            secret: "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
            publicKey: "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
            message: "af82",
            signature: "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"),
    ]

    @Test(arguments: vectors)
    func rfc8032(_ v: Vector) throws {
        let key = try PrivateKey(seed: Hex.decode(v.secret)!)
        #expect(key.publicKey.hex == v.publicKey)
        let message = Hex.decode(v.message)!
        let signature = try key.sign(message)
        #expect(Hex.encode(signature) == v.signature)
        // The reference signer gives the same bytes (Ed25519 is deterministic).
        #expect(Hex.encode(try OpenSSLSigner(seed: key.seed).sign(message)) == v.signature)
        #expect(key.publicKey.isValidSignature(Hex.decode(v.signature)!, for: message))
    }

    @Test func rejectsTamperedMessageSignatureAndKey() throws {
        let key = try PrivateKey()
        let other = try PrivateKey()
        let message = Array("reading".utf8)
        let signature = try key.sign(message)
        #expect(key.publicKey.isValidSignature(signature, for: message))
        #expect(!key.publicKey.isValidSignature(signature, for: Array("readinG".utf8)))
        var flipped = signature
        flipped[10] ^= 0x01
        #expect(!key.publicKey.isValidSignature(flipped, for: message))
        #expect(!other.publicKey.isValidSignature(signature, for: message))
        #expect(!key.publicKey.isValidSignature(Array(signature.prefix(63)), for: message))
        #expect(!key.publicKey.isValidSignature([], for: message))
    }

    @Test func rejectsNonCanonicalS() throws {
        // S + L (the group order) verifies in a malleable implementation; OpenSSL must refuse it.
        let key = try PrivateKey()
        let message = Array("m".utf8)
        let signature = try key.sign(message)
        let order: [UInt8] = Hex.decode("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")!
        var s = Array(signature[32...])
        var carry = 0
        for i in 0..<32 {
            let sum = Int(s[i]) + Int(order[i]) + carry
            s[i] = UInt8(sum & 0xff)
            carry = sum >> 8
        }
        #expect(!key.publicKey.isValidSignature(Array(signature[..<32]) + s, for: message))
    }

    @Test func seedOfWrongLengthIsAPreciseError() {
        #expect(throws: KeyError.wrongLength(what: "Ed25519 seed", expected: 32, got: 31)) {
            try PrivateKey(seed: [UInt8](repeating: 1, count: 31))
        }
    }

    @Test func openSSLFailuresCarryOpenSSLsOwnMessage() {
        let error = makeRawPublicKeyError(length: 31)
        #expect(error?.operation == "EVP_PKEY_new_raw_public_key")
        #expect(error?.message.contains("error:") == true, "OpenSSL's error string, got \(String(describing: error?.message))")
    }

    @Test func randomBytesDiffer() throws {
        let a = try SecureRandom.bytes(32), b = try SecureRandom.bytes(32)
        #expect(a.count == 32 && a != b)
    }
}
