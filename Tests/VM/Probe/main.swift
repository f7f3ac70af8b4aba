// Runs inside the VM of scripts/vm-gpio-test, against a gpio-sim chip the kernel provides: the
// Sensors module and the shim on a real GPIO character device. The simulated chip's lines are
// driven through sysfs (sim_gpioN/pull), as a switch or a meter would drive a pin. Prints
// PROBE PASS/FAIL lines, PROBE BENCH figures and, last, PROBE RESULT PASS or FAIL.
import Foundation
import FlowchainCrypto
import Ledger
import Sensors
import Synchronization

let env = ProcessInfo.processInfo.environment
let label = env["PROBE_CHIP"] ?? "flowchain-sim"
let sim = env["PROBE_SIM"] ?? ""
let dataDir = env["PROBE_DATA"] ?? "/tmp/probe"
let failures = Atomic<Int>(0)

func pass(_ name: String) { print("PROBE PASS \(name)") }
func fail(_ name: String, _ why: String) { failures.add(1, ordering: .relaxed); print("PROBE FAIL \(name): \(why)") }
func check(_ name: String, _ ok: Bool, _ why: @autoclosure () -> String) { ok ? pass(name) : fail(name, why()) }
func bench(_ key: String, _ value: Double, _ unit: String) { print("PROBE BENCH \(key) \(String(format: "%.3f", value)) \(unit)") }

/// Drives line `n` of the simulated chip from outside, as a switch would.
func pull(_ n: Int, _ up: Bool) {
    let path = "\(sim)/sim_gpio\(n)/pull"
    let fd = open(path, O_WRONLY)
    guard fd >= 0 else { fail("pull", "cannot open \(path): \(String(cString: strerror(errno)))"); return }
    let text = up ? "pull-up" : "pull-down"
    _ = text.withCString { write(fd, $0, strlen($0)) }
    close(fd)
}

/// One pulse on line `n`: high for `halfPeriod` ns, then low for as long.
func pulse(_ n: Int, halfPeriod: UInt64) {
    func wait(_ ns: UInt64) {
        var ts = timespec(tv_sec: Int(ns / 1_000_000_000), tv_nsec: Int(ns % 1_000_000_000))
        var left = timespec()
        while nanosleep(&ts, &left) != 0 && errno == EINTR { ts = left }
    }
    pull(n, true)
    wait(halfPeriod)
    pull(n, false)
    wait(halfPeriod)
}

func monotonicNow() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    sorted.isEmpty ? .nan : sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * p))]
}

/// Debounce, through a reader (the iterator lives in this function's scope: released on return).
func debounceChecks(button: Int) async throws {
    // Debounce: a contact that bounces (up, down, up within a few µs) is one change of state.
    pull(button, false)
    let reader = SensorReader(SensorConfiguration(name: "door", kind: .gpioInput(chip: label, line: "button", bias: .asIs, activeLow: false,
                                                                                 debounce: .milliseconds(50))))
    let it = reader.samples().makeAsyncIterator()
    let initial = try await it.next()
    pull(button, true); pull(button, false); pull(button, true)     // bounce, then settled high
    let first = try await it.next()
    try await Task.sleep(for: .milliseconds(200))
    pull(button, false)                                              // released, well after
    let second = try await it.next()
    check("debounce", initial?.payload["value"] == .number("0") && first?.payload["edge"] == .string("rising")
          && second?.payload["edge"] == .string("falling"),
          "\(initial?.json ?? "-") / \(first?.json ?? "-") / \(second?.json ?? "-")")
    // A press shorter than the debounce period is not lost: the settled value is read again.
    try await Task.sleep(for: .milliseconds(200))
    pull(button, true)
    usleep(10_000)       // pressed for 10 ms, within the 50 ms debounce period
    pull(button, false)
    let press = try await it.next(), release = try await it.next()
    check("debounce-short-press", press?.payload["edge"] == .string("rising") && release?.payload["edge"] == .string("falling")
          && release?.payload["value"] == .number("0"), "\(press?.json ?? "-") / \(release?.json ?? "-")")
}

print("PROBE START \(GPIO.backend) chip \(label) sim \(sim)")
// Every wait below is for an edge this probe causes; if one never comes, say so and stop.
Thread.detachNewThread {
    sleep(150)
    print("PROBE FAIL watchdog: still running after 150 s (an awaited edge never came)")
    print("PROBE RESULT FAIL (timeout)")
    exit(1)
}
do {
    // Labels and line names.
    let chip = try GPIO.Chip(label)
    check("open-by-label", chip.info.label == label && chip.info.lines == 8, "\(chip.info)")
    let byName = try GPIO.Chip(chip.info.name)
    check("open-by-name", byName.info == chip.info, "\(byName.info)")
    let button = try chip.offset(of: "button"), led = try chip.offset(of: "led"), meter = try chip.offset(of: "meter")
    let first = try chip.line(0)
    check("line-names", button == 0 && led == 1 && meter == 2 && first.name == "button", "button \(button) led \(led) meter \(meter)")
    do { _ = try chip.offset(of: "nope"); fail("missing-line", "found") } catch { check("missing-line", error.kind == .missing, "\(error)") }

    // Values and bias.
    pull(button, false)
    do {
        let input = try chip.input(button, consumer: "flowchain-probe", bias: .pullDown)
        let low = try input.value()
        check("value-low", low == false, "high")
        pull(button, true)
        let high = try input.value()
        check("value-high", high == true, "low")
        let info = try chip.line(button)
        check("bias-and-consumer", info.bias == .pullDown && info.used && info.consumer == "flowchain-probe", "\(info)")
        // Busy: a second request says who holds the line.
        do { _ = try chip.input(button, consumer: "someone-else"); fail("busy", "granted twice") } catch {
            check("busy", error.kind == .busy && error.message.contains("in use by 'flowchain-probe'"), "\(error)")
        }
    }

    // Edges both ways, with the kernel's timestamps and sequence numbers.
    pull(button, false)
    do {
        let input = try chip.input(button, consumer: "flowchain-probe", edge: .both, bias: .pullDown)
        let stream = input.edges()
        var it = stream.makeAsyncIterator()
        var events: [GPIO.EdgeEvent] = []
        for i in 1...6 {
            pull(button, i % 2 == 1)
            if let e = try await it.next() { events.append(e) }
        }
        input.stopWatching()
        check("edges-both-ways", events.map(\.rising) == [true, false, true, false, true, false], "\(events.map(\.rising))")
        check("edge-sequence-numbers", events.map(\.lineSequence) == [1, 2, 3, 4, 5, 6], "\(events.map(\.lineSequence)) (kernel: \(events.first?.kernelSequence ?? false))")
        check("edge-timestamps", zip(events, events.dropFirst()).allSatisfy { $0.monotonicNanoseconds < $1.monotonicNanoseconds }
              && abs(Double(events.last?.wallMilliseconds ?? 0) - Date().timeIntervalSince1970 * 1000) < 5_000, "\(events.map(\.monotonicNanoseconds))")
    }

    try await debounceChecks(button: button)

    // A reader's line is released once its stream is dropped (asynchronously): wait for it.
    for _ in 0..<200 where (try chip.line(button)).used { try await Task.sleep(for: .milliseconds(10)) }

    // Outputs drive the line.
    do {
        let out = try chip.output(led, consumer: "flowchain-probe", value: true)
        let v1 = (try? String(contentsOfFile: "\(sim)/sim_gpio\(led)/value", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        try out.set(false)
        let v0 = (try? String(contentsOfFile: "\(sim)/sim_gpio\(led)/value", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        check("output", v1 == "1" && v0 == "0", "\(v1 ?? "?") then \(v0 ?? "?")")
    }

    // A pulse counter: pulses counted over one interval (a meter's pulses, 40 ms apart: 1 s of
    // pulses in a 10 s interval, so an emulated machine under load still fits them all in).
    pull(meter, false)
    do {
        let reader = SensorReader(SensorConfiguration(name: "meter", kind: .pulseCounter(chip: label, line: "meter", edge: .rising, bias: .asIs,
                                                                                          debounce: .zero, interval: .seconds(10))))
        let pulses = Task {
            try await Task.sleep(for: .milliseconds(300))
            for _ in 0..<25 { pulse(meter, halfPeriod: 20_000_000) }
        }
        let sample = try await reader.readOnce()
        _ = try await pulses.value
        check("pulse-count", sample.payload["count"] == .number("25") && sample.payload["missed"] == .number("0"), sample.json)
    }

    // The highest pulse rate counted without loss: 200 pulses at each rate, paced by the clock.
    // (Under emulation the simulated interrupts, not the counter, set the limit.)
    var lossless = 0.0, steps = 0
    for rate in [20.0, 50, 100, 200, 500, 1000, 2000, 5000] {
        pull(meter, false)
        let input = try chip.input(meter, consumer: "flowchain-probe", edge: .rising)
        let n = 200
        let counter = Task {
            var count = 0
            for try await _ in input.edges() {
                count += 1
                if count >= n { break }
            }
            return count
        }
        try await Task.sleep(for: .milliseconds(100))
        let t0 = monotonicNow()
        for _ in 0..<n { pulse(meter, halfPeriod: UInt64(5e8 / rate)) }
        let achieved = Double(n) / (Double(monotonicNow() - t0) / 1e9)
        let stop = Task { try await Task.sleep(for: .seconds(3)); input.stopWatching() }
        let count = try await counter.value
        stop.cancel()
        _ = await stop.result      // nothing holds the line after this iteration
        input.stopWatching()
        print("PROBE INFO pulses at \(Int(rate))/s (achieved \(Int(achieved))/s): counted \(count) of \(n)")
        if count == n { lossless = achieved; steps += 1 } else { break }
    }
    // A figure, not a verdict: under emulation on a shared host the emulated interrupts set it.
    bench("pulse_rate_lossless_per_s_emulated", lossless, "/s")
    bench("pulse_rate_steps_lossless", Double(steps), "")

    // Edge to durable commit: a digital input through the ledger, timed from the kernel's stamp.
    try? FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
    let key = try PrivateKey()
    let store = try LedgerStore(path: dataDir + "/ledger.sqlite", owner: key.publicKey)
    let engine = try IngestEngine(store: store, key: key)
    let engineTask = Task { try await engine.run() }
    pull(button, false)
    do {
        let reader = SensorReader(SensorConfiguration(name: "door", kind: .gpioInput(chip: label, line: "button", bias: .asIs, activeLow: false, debounce: .zero)))
        var latencies: [Double] = []
        let it = reader.samples().makeAsyncIterator()
        _ = try await it.next()   // the initial value
        for i in 1...100 {
            pull(button, i % 2 == 1)
            guard let sample = try await it.next() else { break }
            _ = try await engine.ingest(.unsigned(device: "door", payload: Array(sample.json.utf8), time: sample.time, timeQuality: .synced, source: .gpio))
            if case let .number(ns)? = sample.payload["kernelTimeNs"], let stamp = UInt64(ns) {
                latencies.append(Double(monotonicNow() - stamp) / 1e6)
            }
        }
        latencies.sort()
        bench("edge_to_commit_p50_ms", percentile(latencies, 0.5), "ms")
        bench("edge_to_commit_p99_ms", percentile(latencies, 0.99), "ms")
        let stored = try store.readings(afterCursor: 0, device: "door", limit: 1000)
        check("edges-become-readings", stored.count == 100 && latencies.count == 100, "\(stored.count) stored, \(latencies.count) timed")
    }
    engineTask.cancel()
} catch {
    fail("probe", "\(error)")
}
let failed = failures.load(ordering: .relaxed)
print("PROBE RESULT \(failed == 0 ? "PASS" : "FAIL") (\(failed) failed)")
