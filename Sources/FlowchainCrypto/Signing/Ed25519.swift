public import Foundation
internal import COpenSSL
internal import CSodium

/// Ed25519 (RFC 8032): signing and verification through libsodium, with OpenSSL's EVP
/// implementation kept as the measured reference.
public enum Ed25519 {
    public static let publicKeyLength = 32
    public static let seedLength = 32
    public static let signatureLength = 64
}

/// An Ed25519 public key: 32 bytes, as in RFC 8032 §5.1.5.
public struct PublicKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let raw: Digest32

    public init<C: Collection>(bytes: C) throws where C.Element == UInt8 {
        raw = try Digest32(bytes: bytes, what: "Ed25519 public key")
    }

    public init(raw: Digest32) { self.raw = raw }

    public var bytes: [UInt8] { raw.bytes }
    public var hex: String { raw.hex }
    public var description: String { hex }

    public static func < (lhs: PublicKey, rhs: PublicKey) -> Bool { lhs.raw < rhs.raw }

    /// True when `signature` is a valid Ed25519 signature by this key over `message`.
    ///
    /// Verified with libsodium's `crypto_sign_verify_detached`, which refuses what RFC 8032 leaves
    /// open and OpenSSL accepts: small-order public keys and small-order R (so no "signature" can
    /// pass without a private key), non-canonical keys, and non-canonical S (no malleability).
    /// It is also faster here than OpenSSL's verifier (`flowchain bench crypto` compares both).
    public func isValidSignature<M: ContiguousBytes>(_ signature: [UInt8], for message: M) -> Bool {
        guard signature.count == Ed25519.signatureLength, Sodium.ready else { return false }
        let key = raw.bytes
        return message.withUnsafeBytes { msg in
            // libsodium wants a non-null pointer even for an empty message.
            let empty: UInt8 = 0
            return withUnsafePointer(to: empty) { fallback in
                let start = msg.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? fallback
                return crypto_sign_verify_detached(signature, start, UInt64(msg.count), key) == 0
            }
        }
    }

    /// True when the key is a canonical encoding of a point in the prime-order subgroup, not of
    /// small order (`crypto_core_ed25519_is_valid_point`): the keys a real private key can have.
    public var isAcceptable: Bool {
        guard Sodium.ready else { return false }
        return crypto_core_ed25519_is_valid_point(raw.bytes) == 1
    }

    /// OpenSSL's verifier (`EVP_DigestVerify`), kept as the reference `flowchain bench crypto`
    /// measures libsodium against. It accepts small-order keys: never use it to admit a reading.
    public func isValidSignatureOpenSSL<M: ContiguousBytes>(_ signature: [UInt8], for message: M) -> Bool {
        guard signature.count == Ed25519.signatureLength else { return false }
        let pkey: OpaquePointer? = raw.withUnsafeBytes { key in
            EVP_PKEY_new_raw_public_key(copenssl_EVP_PKEY_ED25519(), nil, key.baseAddress?.assumingMemoryBound(to: UInt8.self), key.count)
        }
        guard let pkey else {
            ERR_clear_error()
            return false
        }
        defer { EVP_PKEY_free(pkey) }
        guard let ctx = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(ctx) }
        guard EVP_DigestVerifyInit(ctx, nil, nil, nil, pkey) == 1 else {
            ERR_clear_error()
            return false
        }
        let result = message.withUnsafeBytes { msg in
            signature.withUnsafeBufferPointer { sig in
                EVP_DigestVerify(ctx, sig.baseAddress, sig.count, msg.baseAddress?.assumingMemoryBound(to: UInt8.self), msg.count)
            }
        }
        if result != 1 { ERR_clear_error() }
        return result == 1
    }
}

/// libsodium's one-time initialisation (`sodium_init`, safe to call from any thread).
enum Sodium {
    static let ready: Bool = sodium_init() >= 0
}

/// An Ed25519 private key.
///
/// Signs with libsodium's `crypto_sign_detached`: Ed25519 signatures are deterministic (RFC 8032),
/// so any implementation gives the same bytes, and libsodium's are about twice as fast here as
/// OpenSSL's `EVP_DigestSign` (`flowchain bench crypto` measures both). The node signs every reading
/// it numbers itself (MQTT, sensors), so this is on the ingest path.
public final class PrivateKey: @unchecked Sendable {
    // @unchecked Sendable: `secret` is written once in init and only read afterwards (libsodium
    // signs with a read-only key, so concurrent signing is safe); it is wiped in deinit.
    /// libsodium's 64-byte secret key: the seed followed by the public key.
    private let secret: UnsafeMutablePointer<UInt8>
    private static let secretLength = 64
    /// The 32-byte seed (RFC 8032's "private key").
    public let seed: [UInt8]
    public let publicKey: PublicKey

    /// A new key from `RAND_bytes`.
    public convenience init() throws {
        try self.init(seed: SecureRandom.bytes(Ed25519.seedLength))
    }

    /// The key for a 32-byte seed (`crypto_sign_seed_keypair`).
    public init(seed: [UInt8]) throws {
        guard seed.count == Ed25519.seedLength else {
            throw KeyError.wrongLength(what: "Ed25519 seed", expected: Ed25519.seedLength, got: seed.count)
        }
        guard Sodium.ready else { throw KeyError.unavailable("libsodium did not initialise (sodium_init failed)") }
        var publicBytes = [UInt8](repeating: 0, count: Ed25519.publicKeyLength)
        let secret = UnsafeMutablePointer<UInt8>.allocate(capacity: Self.secretLength)
        secret.initialize(repeating: 0, count: Self.secretLength)
        guard crypto_sign_seed_keypair(&publicBytes, secret, seed) == 0,
              let key = try? PublicKey(bytes: publicBytes) else {
            sodium_memzero(secret, Self.secretLength)
            secret.deallocate()
            throw KeyError.unavailable("crypto_sign_seed_keypair failed")
        }
        self.secret = secret
        self.seed = seed
        publicKey = key
    }

    deinit {
        sodium_memzero(secret, Self.secretLength)
        secret.deallocate()
    }

    /// Signs `message` (pure Ed25519: no pre-hash).
    public func sign<M: ContiguousBytes>(_ message: M) throws -> [UInt8] {
        var signature = [UInt8](repeating: 0, count: Ed25519.signatureLength)
        let rc = message.withUnsafeBytes { msg in
            let empty: UInt8 = 0
            return withUnsafePointer(to: empty) { fallback in
                crypto_sign_detached(&signature, nil, msg.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? fallback,
                                     UInt64(msg.count), secret)
            }
        }
        guard rc == 0 else { throw KeyError.unavailable("crypto_sign_detached failed") }
        return signature
    }
}

/// OpenSSL's Ed25519 signer (`EVP_DigestSign`), holding its key as an `EVP_PKEY`: the same
/// signatures as `PrivateKey.sign`, kept as the reference `flowchain bench crypto` measures
/// libsodium against.
public final class OpenSSLSigner: @unchecked Sendable {
    // @unchecked Sendable: the EVP_PKEY is never mutated after init; OpenSSL allows concurrent
    // signing with one key as long as each call has its own EVP_MD_CTX, which `sign` creates.
    private let pkey: OpaquePointer

    public init(seed: [UInt8]) throws {
        guard let key = seed.withUnsafeBufferPointer({ EVP_PKEY_new_raw_private_key(copenssl_EVP_PKEY_ED25519(), nil, $0.baseAddress, $0.count) }) else {
            throw OpenSSLError.drain("EVP_PKEY_new_raw_private_key")
        }
        pkey = key
    }

    deinit { EVP_PKEY_free(pkey) }

    public func sign<M: ContiguousBytes>(_ message: M) throws -> [UInt8] {
        guard let ctx = EVP_MD_CTX_new() else { throw OpenSSLError.drain("EVP_MD_CTX_new", fallback: "out of memory") }
        defer { EVP_MD_CTX_free(ctx) }
        guard EVP_DigestSignInit(ctx, nil, nil, nil, pkey) == 1 else { throw OpenSSLError.drain("EVP_DigestSignInit") }
        var signature = [UInt8](repeating: 0, count: Ed25519.signatureLength)
        var length = signature.count
        let ok = message.withUnsafeBytes { msg in
            EVP_DigestSign(ctx, &signature, &length, msg.baseAddress?.assumingMemoryBound(to: UInt8.self), msg.count)
        }
        guard ok == 1, length == Ed25519.signatureLength else { throw OpenSSLError.drain("EVP_DigestSign") }
        return signature
    }
}

/// Cryptographically secure random bytes (`RAND_bytes`).
public enum SecureRandom {
    public static func bytes(_ count: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        guard RAND_bytes(&out, Int32(count)) == 1 else { throw OpenSSLError.drain("RAND_bytes") }
        return out
    }
}

/// Asks libcrypto for a public key of `length` bytes and returns its error, if it refuses.
/// Exists so tests can show that an OpenSSL failure surfaces with OpenSSL's own message.
func makeRawPublicKeyError(length: Int) -> OpenSSLError? {
    let bytes = [UInt8](repeating: 7, count: length)
    guard let key = bytes.withUnsafeBufferPointer({ EVP_PKEY_new_raw_public_key(copenssl_EVP_PKEY_ED25519(), nil, $0.baseAddress, $0.count) }) else {
        return OpenSSLError.drain("EVP_PKEY_new_raw_public_key")
    }
    EVP_PKEY_free(key)
    return nil
}
