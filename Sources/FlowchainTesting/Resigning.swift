import FlowchainCrypto
import Ledger
internal import CSodium

extension Fixtures {
    /// A second, different, valid Ed25519 signature by `key` over `message`, made with a random
    /// nonce instead of RFC 8032's deterministic one: what any signer can do, and why a reading's
    /// id must not depend on its signature.
    public static func signWithRandomNonce(_ message: [UInt8], key: PrivateKey) -> [UInt8] {
        _ = sodium_init()
        var az = [UInt8](repeating: 0, count: 64)
        crypto_hash_sha512(&az, key.seed, UInt64(key.seed.count))
        var a = Array(az[0..<32]) + [UInt8](repeating: 0, count: 32)
        a[0] &= 248; a[31] &= 127; a[31] |= 64
        var aReduced = [UInt8](repeating: 0, count: 32)
        crypto_core_ed25519_scalar_reduce(&aReduced, a)
        var r = [UInt8](repeating: 0, count: 32)
        var R = [UInt8](repeating: 0, count: 32)
        repeat { crypto_core_ed25519_scalar_random(&r) } while crypto_scalarmult_ed25519_base_noclamp(&R, r) != 0
        var k64 = [UInt8](repeating: 0, count: 64)
        let hashed = R + key.publicKey.bytes + message
        crypto_hash_sha512(&k64, hashed, UInt64(hashed.count))
        var k = [UInt8](repeating: 0, count: 32)
        crypto_core_ed25519_scalar_reduce(&k, k64)
        var ka = [UInt8](repeating: 0, count: 32)
        crypto_core_ed25519_scalar_mul(&ka, k, aReduced)
        var s = [UInt8](repeating: 0, count: 32)
        crypto_core_ed25519_scalar_add(&s, r, ka)
        return R + s
    }

    /// `reading` signed again by its signer `key` with a fresh nonce: same body, other signature.
    public static func resigned(_ reading: Reading, key: PrivateKey) throws -> Reading {
        let signature = signWithRandomNonce(Reading.signingDomain + Array(reading.body), key: key)
        return try Reading(device: reading.device, seq: reading.seq, time: reading.time, timeQuality: reading.timeQuality,
                           source: reading.source, payload: reading.payload, signer: reading.signer, signature: signature)
    }
}
