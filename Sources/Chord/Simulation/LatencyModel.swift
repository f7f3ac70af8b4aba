import Foundation

/// One-way message latency in the simulator, milliseconds.
public enum LatencyModel: Hashable, Sendable, CustomStringConvertible {
    case constant(Int64)
    /// Uniform over lo…hi.
    case uniform(Int64, Int64)
    /// `minimum` plus an exponential tail with the given mean: most messages are quick, a few slow.
    case exponential(minimum: Int64, mean: Double)

    func sample<R: RandomNumberGenerator>(_ rng: inout R) -> Int64 {
        switch self {
        case .constant(let ms): return ms
        case .uniform(let lo, let hi): return Int64.random(in: lo...max(lo, hi), using: &rng)
        case .exponential(let minimum, let mean):
            let u = Double.random(in: Double.ulpOfOne..<1, using: &rng)
            return minimum + Int64((-mean * Foundation.log(u)).rounded())
        }
    }

    /// Parses `10`, `5-50` or `exp:5:20` (minimum 5 ms, mean tail 20 ms).
    public init?(parsing text: String) {
        if text.hasPrefix("exp:") {
            let p = text.dropFirst(4).split(separator: ":")
            guard p.count == 2, let m = Int64(p[0]), let mean = Double(p[1]), m >= 0, mean >= 0 else { return nil }
            self = .exponential(minimum: m, mean: mean)
        } else if let dash = text.firstIndex(of: "-") {
            guard let lo = Int64(text[..<dash]), let hi = Int64(text[text.index(after: dash)...]), lo >= 0, hi >= lo else { return nil }
            self = .uniform(lo, hi)
        } else {
            guard let c = Int64(text), c >= 0 else { return nil }
            self = .constant(c)
        }
    }

    public var description: String {
        switch self {
        case .constant(let c): "\(c) ms"
        case .uniform(let lo, let hi): "\(lo)–\(hi) ms"
        case .exponential(let m, let mean): "\(m) ms + exp(mean \(mean) ms)"
        }
    }
}
