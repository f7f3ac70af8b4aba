public import Foundation

internal import COpenSSL

/// SHA-256 (FIPS 180-4) through libcrypto's EVP interface.
public enum SHA256 {
    /// Digest of `data` in one call (`EVP_Digest`).
    public static func hash<D: ContiguousBytes>(_ data: D) -> Digest32 {
        data.withUnsafeBytes { raw in hash(raw) }
    }

    public static func hash(_ raw: UnsafeRawBufferPointer) -> Digest32 {
        var out = Digest32.zero
        out.withMutableBytes { dst in
            let ok = EVP_Digest(raw.baseAddress, raw.count, dst.baseAddress?.assumingMemoryBound(to: UInt8.self), nil, EVPAlgorithms.sha256, nil)
            precondition(ok == 1, "EVP_Digest(SHA-256) cannot fail on valid input: \(OpenSSLError.drain("EVP_Digest"))")
        }
        return out
    }

    /// Incremental SHA-256 (`EVP_DigestInit_ex`/`Update`/`Final_ex`).
    public struct Hasher: ~Copyable {
        private let context: OpaquePointer

        public init() {
            guard let ctx = EVP_MD_CTX_new() else { preconditionFailure("EVP_MD_CTX_new: out of memory") }
            precondition(EVP_DigestInit_ex(ctx, EVPAlgorithms.sha256, nil) == 1, "EVP_DigestInit_ex(SHA-256)")
            context = ctx
        }

        public mutating func update<D: ContiguousBytes>(_ data: D) {
            data.withUnsafeBytes { raw in
                _ = EVP_DigestUpdate(context, raw.baseAddress, raw.count)
            }
        }

        public consuming func finalize() -> Digest32 {
            var out = Digest32.zero
            out.withMutableBytes { dst in
                var length: UInt32 = 0
                _ = EVP_DigestFinal_ex(context, dst.baseAddress?.assumingMemoryBound(to: UInt8.self), &length)
            }
            return out
        }

        deinit { EVP_MD_CTX_free(context) }
    }
}

/// SHA-1 (FIPS 180-4): Chord identifiers only, never for integrity.
public enum SHA1 {
    public static func hash<D: ContiguousBytes>(_ data: D) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 20)
        data.withUnsafeBytes { raw in
            out.withUnsafeMutableBufferPointer { dst in
                let ok = EVP_Digest(raw.baseAddress, raw.count, dst.baseAddress, nil, EVPAlgorithms.sha1, nil)
                precondition(ok == 1, "EVP_Digest(SHA-1) cannot fail on valid input")
            }
        }
        return out
    }
}

/// Algorithms fetched once from the default provider; fetching per call costs a lock and a lookup.
enum EVPAlgorithms {
    // The EVP_MD objects are immutable after fetch and documented as safe to share between threads.
    nonisolated(unsafe) static let sha256: OpaquePointer = {
        guard let md = EVP_MD_fetch(nil, "SHA256", nil) else {
            preconditionFailure("EVP_MD_fetch(SHA256): \(OpenSSLError.drain("EVP_MD_fetch"))")
        }
        return md
    }()

    nonisolated(unsafe) static let sha1: OpaquePointer = {
        guard let md = EVP_MD_fetch(nil, "SHA1", nil) else {
            preconditionFailure("EVP_MD_fetch(SHA1): \(OpenSSLError.drain("EVP_MD_fetch"))")
        }
        return md
    }()
}
