import FlowchainCrypto

/// The tests' seeded generator (SplitMix64), so property tests are reproducible from their seed,
/// with helpers for the values they draw.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    private var base: SplitMix64

    public init(seed: UInt64) { base = SplitMix64(seed: seed) }

    public mutating func next() -> UInt64 { base.next() }

    public mutating func bytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8.random(in: 0...255, using: &self) } }

    /// A valid device id of random length and alphabet.
    public mutating func deviceID() -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-")
        let n = Int.random(in: 1...64, using: &self)
        return String((0..<n).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &self)] })
    }
}
