import Ledger

extension IngestEngine {
    /// Starts `run()` in the background, as a node's service group would, and returns the engine:
    /// for tests and benchmarks that use an engine without a node. It runs until the process ends
    /// (or `drain()` has sealed everything; the loop then idles).
    @discardableResult
    public nonisolated func running() -> IngestEngine {
        Task { try await self.run() }
        return self
    }
}
