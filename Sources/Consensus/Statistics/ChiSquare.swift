import Foundation

/// Pearson's chi-square goodness-of-fit test.
public enum ChiSquare {
    /// The statistic Σ (observed − expected)² / expected.
    public static func statistic(observed: [Double], expected: [Double]) -> Double {
        zip(observed, expected).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) / $1.1 }
    }

    /// P(χ²(dof) ≥ x): the upper regularized incomplete gamma Q(dof/2, x/2).
    public static func pValue(_ x: Double, degreesOfFreedom dof: Int) -> Double {
        upperRegularizedGamma(Double(dof) / 2, x / 2)
    }

    /// Q(a, x) by the series for P when x < a + 1 and Lentz's continued fraction otherwise.
    static func upperRegularizedGamma(_ a: Double, _ x: Double) -> Double {
        guard x > 0 else { return 1 }
        let lnPrefix = a * log(x) - x - lgamma(a)
        if x < a + 1 {
            var term = 1 / a, sum = term, n = a
            for _ in 0..<10_000 {
                n += 1
                term *= x / n
                sum += term
                if abs(term) < abs(sum) * 1e-15 { break }
            }
            return max(0, 1 - sum * exp(lnPrefix))
        }
        let tiny = 1e-300
        var b = x + 1 - a, c = 1 / tiny, d = 1 / b, h = d
        for i in 1...10_000 {
            let an = -Double(i) * (Double(i) - a)
            b += 2
            d = an * d + b
            if abs(d) < tiny { d = tiny }
            c = b + an / c
            if abs(c) < tiny { c = tiny }
            d = 1 / d
            let delta = d * c
            h *= delta
            if abs(delta - 1) < 1e-15 { break }
        }
        return min(1, exp(lnPrefix) * h)
    }
}
