import Foundation
import Ledger

/// One scenario's figures: named values with units, printed as a table or JSON.
public struct BenchReport: Sendable {
    public struct Figure: Sendable {
        public let name: String
        public let value: Double
        public let unit: String
    }

    public let scenario: String
    public private(set) var figures: [Figure] = []
    public private(set) var notes: [String] = []

    public init(scenario: String) { self.scenario = scenario }

    public mutating func add(_ name: String, _ value: Double, _ unit: String) {
        figures.append(Figure(name: name, value: value, unit: unit))
    }

    public mutating func note(_ text: String) { notes.append(text) }

    public var table: String {
        var lines = ["== \(scenario)"]
        let width = figures.map(\.name.count).max() ?? 0
        for f in figures {
            let value = f.value >= 100 ? String(format: "%.0f", f.value) : String(format: "%.3f", f.value)
            lines.append("  " + f.name.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + value + " " + f.unit)
        }
        lines += notes.map { "  note: \($0)" }
        return lines.joined(separator: "\n")
    }

    public var json: [String: Any] {
        var values: [String: Any] = [:]
        for f in figures { values[f.name] = ["value": f.value, "unit": f.unit] }
        return ["scenario": scenario, "figures": values, "notes": notes]
    }
}

/// Runs `body` repeatedly until `budget` elapses or `maxIterations` is reached; returns
/// (iterations, seconds). Every loop here is bounded in both count and time.
func timed(budget: Duration = .seconds(1), maxIterations: Int = .max, _ body: () throws -> Void) rethrows -> (Int, Double) {
    let clock = ContinuousClock()
    let start = clock.now
    var n = 0
    while n < maxIterations, clock.now - start < budget {
        try body()
        n += 1
    }
    return (n, (clock.now - start).seconds)
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return .nan }
    let i = min(sorted.count - 1, max(0, Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1))
    return sorted[i]
}

public enum BenchEnvironment {
    public static var cores: Int { ProcessInfo.processInfo.activeProcessorCount }

    public static var buildWarning: String? {
        #if DEBUG
        return "this is a debug build; build with `swift build -c release` for figures worth reporting"
        #else
        return nil
        #endif
    }
}

extension IngestEngine {
    /// Starts the engine's `run()` loop for the rest of the benchmark, as a node's service group would.
    nonisolated func runningForBench() -> IngestEngine {
        Task { try await self.run() }
        return self
    }
}

/// CPU time (user + system) this process has used, in seconds.
func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}
