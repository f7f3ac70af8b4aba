import FlowchainTesting
import Foundation
import Testing

/// `bench disk` counts what a node writes while it stops (the WAL checkpoint) by reading the
/// exited process's `/proc/PID/io` before it is reaped: that must see the bytes written last.
@Suite("Counting an exited process's writes")
struct ExitedProcessIOTests {
    @Test func theWritesOfAnExitedProcessAreReadBeforeItIsReaped() throws {
        let dir = TemporaryDirectory("exited-io")
        // 64 KiB written and fsynced just before the process exits.
        let child = try ChildProcess(executable: "/bin/sh", ["-c", "dd if=/dev/zero of=\(dir.file("f")) bs=4096 count=16 conv=fsync 2>/dev/null"],
                                     outputPath: dir.file("out.txt"))
        #expect(child.waitForExitUnreaped())
        let io = try String(contentsOfFile: "/proc/\(child.pid)/io", encoding: .utf8)
        let written = io.split(separator: "\n").first { $0.hasPrefix("write_bytes:") }.flatMap { Int($0.split(separator: " ").last ?? "") } ?? -1
        #expect(written >= 65_536, "\(io)")
        #expect(child.waitUntilExit() == 0, "reaped afterwards, with its exit status")
    }
}
