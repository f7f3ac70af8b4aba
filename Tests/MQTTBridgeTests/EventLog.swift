import FlowchainTesting
import Foundation
import MQTTBridge
import Synchronization

/// Collects a client's events as they come, so a test can wait (bounded) for the one it expects.
final class EventLog: Sendable {
    final class Seen: Sendable { let list = Mutex<[MQTTEvent]>([]) }
    private let seen = Seen()
    private let task: Task<Void, Never>

    init(_ client: MQTTClient) {
        let stream = client.events
        let seen = self.seen
        task = Task { for await e in stream { seen.list.withLock { $0.append(e) } } }
    }

    var all: [MQTTEvent] { seen.list.withLock { $0 } }
    var messages: [MQTTMessage] { all.compactMap { if case let .message(m) = $0 { m } else { nil } } }

    /// Waits until `condition` holds over the events so far; false after `timeout`.
    func wait(timeout: Duration = .seconds(60), _ condition: ([MQTTEvent]) -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if condition(all) { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return condition(all)
    }

    func waitConnected(count: Int = 1, timeout: Duration = .seconds(60)) async -> Bool {
        await wait(timeout: timeout) { $0.filter { if case .connected = $0 { true } else { false } }.count >= count }
    }

    func waitMessages(_ n: Int, timeout: Duration = .seconds(60)) async -> [MQTTMessage] {
        _ = await wait(timeout: timeout) { events in events.filter { if case .message = $0 { true } else { false } }.count >= n }
        return messages
    }

    deinit { task.cancel() }
}

/// Runs a command-line tool to completion (bounded), returning status and output. Spawned through
/// `ChildProcess` (posix_spawn), not `Foundation.Process`, whose pipes misbehave when tests start
/// processes in parallel.
func run(_ tool: String, _ arguments: [String], timeout: Duration = .seconds(30)) async throws -> (status: Int32, output: String) {
    let dir = TemporaryDirectory("tool")
    let child = try ChildProcess(executable: tool, arguments, outputPath: dir.file("out.txt"))
    let status = try await child.wait(timeout: timeout)
    return (status, child.output)
}
