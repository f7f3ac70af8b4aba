import Dispatch
import FlowchainCrypto
import Ledger
import Foundation
import Synchronization

/// The physical limits that bound ingest: SHA-256 throughput and Ed25519 sign/verify rates.
public enum CryptoBench {
    public static func run(progress: (String) -> Void) throws -> BenchReport {
        var report = BenchReport(scenario: "crypto")
        let buffer = try SecureRandom.bytes(1 << 20)
        progress("SHA-256 over 1 MiB buffers")
        let (n, secs) = timed(maxIterations: 10_000) { _ = SHA256.hash(buffer) }
        report.add("sha256_MBps", Double(n) / secs, "MiB/s")

        let key = try PrivateKey()
        let message = [UInt8](repeating: 0x5a, count: 200)   // about one encoded reading
        progress("Ed25519 sign, one core (libsodium, the signer the node uses)")
        let (s, ss) = try timed(maxIterations: 1_000_000) { _ = try key.sign(message) }
        report.add("ed25519_sign_per_s_1core", Double(s) / ss, "/s")
        progress("Ed25519 sign, one core (OpenSSL EVP_DigestSign, the reference)")
        let reference = try OpenSSLSigner(seed: key.seed)
        let (os1, oss) = try timed(maxIterations: 1_000_000) { _ = try reference.sign(message) }
        report.add("ed25519_sign_openssl_per_s_1core", Double(os1) / oss, "/s")
        report.add("libsodium_vs_openssl_sign", (Double(s) / ss) / (Double(os1) / oss), "ratio")

        let signature = try key.sign(message)
        let referenceSignature = try reference.sign(message)
        precondition(referenceSignature == signature, "libsodium and OpenSSL must give the same Ed25519 signature")
        progress("Ed25519 verify, one core (libsodium, the verifier the node uses)")
        let (v, vs) = timed(maxIterations: 1_000_000) { precondition(key.publicKey.isValidSignature(signature, for: message)) }
        report.add("ed25519_verify_per_s_1core", Double(v) / vs, "/s")
        progress("Ed25519 verify, one core (OpenSSL EVP_DigestVerify, the reference)")
        let (o, os) = timed(maxIterations: 1_000_000) { precondition(key.publicKey.isValidSignatureOpenSSL(signature, for: message)) }
        report.add("ed25519_verify_openssl_per_s_1core", Double(o) / os, "/s")
        report.add("libsodium_vs_openssl_verify", (Double(v) / vs) / (Double(o) / os), "ratio")

        progress("Ed25519 sign and verify, all \(BenchEnvironment.cores) cores")
        report.add("ed25519_sign_per_s_allcores", try allCores { _ = try key.sign(message) }, "/s")
        report.add("ed25519_verify_per_s_allcores", try allCores { precondition(key.publicKey.isValidSignature(signature, for: message)) }, "/s")
        report.add("cores", Double(BenchEnvironment.cores), "")

        // Not crypto, but the other per-reading check on the ingest path.
        progress("payload JSON check, one core")
        let payload = Array(#"{"temperature":21.52,"humidity":48.1,"battery":3.71}"#.utf8)
        let (j, js) = timed(maxIterations: 10_000_000) { try? ReadingValidator.checkPayload(payload) }
        report.add("payload_json_checks_per_s_1core", Double(j) / js, "/s")
        return report
    }

    /// Total operations per second with one busy thread per core.
    public static func allCores(budget: Duration = .seconds(1), _ body: @Sendable @escaping () throws -> Void) throws -> Double {
        let cores = BenchEnvironment.cores
        let rates = RateBox(count: cores)
        DispatchQueue.concurrentPerform(iterations: cores) { i in
            let (n, secs) = (try? timed(budget: budget, maxIterations: 10_000_000, body)) ?? (0, 1)
            rates.set(i, Double(n) / secs)
        }
        return rates.sum
    }
}

/// Per-thread results of `concurrentPerform`, each slot written by exactly one thread.
final class RateBox: Sendable {
    private let values: Mutex<[Double]>
    init(count: Int) { values = Mutex(Array(repeating: 0, count: count)) }
    func set(_ i: Int, _ v: Double) { values.withLock { $0[i] = v } }
    var sum: Double { values.withLock { $0.reduce(0, +) } }
}
