import FlowchainCrypto
import Ledger

/// Deterministic keys and readings for tests.
public enum Fixtures {
    /// The same key for the same `n`, every run.
    public static func key(_ n: UInt8) -> PrivateKey {
        // A 32-byte seed is always accepted; a failure here is a broken OpenSSL, not a test input.
        try! PrivateKey(seed: [UInt8](repeating: n, count: 32))
    }

    public static func reading(
        _ key: PrivateKey, device: String = "sensor-1", seq: UInt64, time: Int64 = 1_764_000_000_000,
        payload: String = #"{"temperature":21.5}"#, source: ReadingSource = .rpc
    ) throws -> Reading {
        try Reading(device: device, seq: seq, time: time, source: source, payload: Array(payload.utf8), signedBy: key)
    }
}
