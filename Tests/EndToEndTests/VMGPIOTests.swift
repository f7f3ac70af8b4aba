import Foundation
import FlowchainTesting
import Testing

/// The libgpiod path against a real kernel GPIO chip: scripts/vm-gpio-test boots a Debian kernel
/// under qemu with gpio-sim and runs the shim's C tests, the Sensors probe (Tests/VM/Probe), a node
/// reading a line, and the C sensor agent publishing through mosquitto to a bridging node, inside it. Needs qemu-system-x86, busybox-static and cpio (scripts/deps test installs them)
/// and network access to Debian's archive the first time (the kernel pieces are cached in .build/vm).
@Suite("GPIO on a real kernel chip (gpio-sim in a VM)")
struct VMGPIOTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static let probe = URL(fileURLWithPath: ChildProcess.flowchainBinary).deletingLastPathComponent().appendingPathComponent("gpio-vm-probe").path
    static let ready = FileManager.default.isExecutableFile(atPath: "/usr/bin/qemu-system-x86_64")
        && FileManager.default.isExecutableFile(atPath: probe)

    @Test(.enabled(if: ready, "needs qemu-system-x86_64 and the gpio-vm-probe binary (scripts/test installs and builds both)"))
    func theShimAndTheSensorsModuleWorkOnAKernelGPIOChip() async throws {
        let dir = TemporaryDirectory("vm-gpio")
        let run = try ChildProcess(executable: "/bin/bash", [Self.root + "/scripts/vm-gpio-test", Self.probe], outputPath: dir.file("vm.log"))
        let status = try await run.wait(timeout: .seconds(1500))
        let lines = run.output.split(separator: "\n")
        let verdicts = lines.filter { $0.hasPrefix("PROBE ") || $0.hasPrefix("fio_test:") || $0.contains("FAILED") }
        print(verdicts.filter { $0.hasPrefix("PROBE BENCH") || $0.hasPrefix("PROBE INFO") }.joined(separator: "\n"))
        #expect(status == 0, "\(verdicts.joined(separator: "\n"))\n\(run.output.suffix(3000))")
        #expect(lines.filter { $0.hasPrefix("fio_test:") && $0.hasSuffix(" 0 failed") }.count == 2, "the C tests ran on the chip, against libgpiod 1.6 and 2.x")
        for name in ["open-by-label", "line-names", "bias-and-consumer", "busy", "edges-both-ways", "edge-sequence-numbers",
                     "edge-timestamps", "debounce", "debounce-short-press", "output", "pulse-count", "edges-become-readings"] {
            #expect(lines.contains("PROBE PASS \(name)"), "\(name): \(verdicts.joined(separator: "\n"))")
        }
        // The tool and a node on the board-like VM: list shows the chip and its named lines, read
        // reads one, and a node records the line's edges as readings.
        #expect(lines.contains { $0.hasPrefix("VM: list:") && $0.contains("label flowchain-sim") }, "\(run.output.suffix(2000))")
        #expect(lines.contains { $0.hasPrefix("VM: list:") && $0.contains("button") })
        #expect(lines.contains { $0.hasPrefix("VM: read: {") && $0.contains("\"value\":0") })
        #expect(lines.contains { $0.hasPrefix("VM: readings:") && $0.contains("\"edge\":\"rising\"") && $0.contains("\"edge\":\"falling\"") })
        // The C agent on the same chip publishes to a mosquitto in the VM; a node bridges its
        // topics: line 3's six changes arrive as edges numbered 1…6, line 2's three rising edges
        // as pulse counts summing to 3, both marked with the VM clock's state (not synchronised).
        let spare = try #require(payloads(lines, "VM: agent-spare: "), "\(run.output.suffix(3000))")
        #expect(spare.map { $0["edge"] as? String } == ["rising", "falling", "rising", "falling", "rising", "falling"])
        #expect(spare.map { $0["seq"] as? Int } == [1, 2, 3, 4, 5, 6])
        let meter = try #require(payloads(lines, "VM: agent-meter: "))
        #expect(meter.compactMap { $0["count"] as? Int }.reduce(0, +) == 3)
        #expect(lines.contains { $0.hasPrefix("VM: agent-spare:") && $0.contains("\"timeSynced\":false,\"source\":\"mqtt\"") },
                "the agent said its clock is not synchronised and the stored reading says so")
        #expect(lines.contains("VM: agent exit 0"))
    }

    /// The payloads of the readings `flowchain readings --json` printed on the line after `prefix`.
    func payloads(_ lines: [Substring], _ prefix: String) -> [[String: Any]]? {
        guard let line = lines.first(where: { $0.hasPrefix(prefix) }),
              let object = try? JSONSerialization.jsonObject(with: Data(line.dropFirst(prefix.count).utf8)) as? [String: Any],
              let readings = object["readings"] as? [[String: Any]] else { return nil }
        return readings.compactMap { $0["payload"] as? [String: Any] }
    }
}
