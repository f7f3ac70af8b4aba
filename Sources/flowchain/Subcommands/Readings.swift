import ArgumentParser
import FlowchainWire
import Ledger

struct ReadingsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "readings",
        abstract: "List a device's readings in a time range, oldest first.",
        discussion: """
            From the data directory, or from a running node with --node; both print the same. \
            Times are ms since the epoch, ISO 8601 (2026-11-25T15:00:00Z) or relative (-10m, -2h, -1d). \
            With --json: {"device","readings":[…],"nextCursor"}, each reading as RPC `readings` \
            gives it (with its cursor); nextCursor continues the listing past --limit.
            """
    )

    @OptionGroup var source: SourceOptions
    @Option(help: "The device id.") var device: String
    @Option(parsing: .unconditional, help: "Earliest time (inclusive).") var from: String?
    @Option(parsing: .unconditional, help: "Latest time (inclusive).") var to: String?
    @Option(help: "Most readings to print.") var limit = 1000
    @OptionGroup var output: JSONOption

    func validate() throws {
        if let why = DeviceID.problem(with: device) { throw ValidationError("--device: \(why)") }
        guard limit > 0 else { throw ValidationError("--limit must be at least 1") }
    }

    func run() async throws {
        let fromMs = try from.map { try parseTime($0, option: "--from") } ?? .min
        let toMs = try to.map { try parseTime($0, option: "--to") } ?? .max
        let (device, limit) = (self.device, self.limit)
        let page = try await source.withSource { ledger in
            var items: [ReadingRecord] = []
            var cursor: String? = nil
            repeat {
                let page = try await ledger.readings(device: device, from: fromMs, to: toMs, limit: min(1000, limit - items.count), after: cursor)
                items += page.items
                cursor = page.nextCursor
            } while cursor != nil && items.count < limit
            return Page(items: items, nextCursor: cursor)
        }
        if output.json {
            print(jsonLine { ReadingWire.write(page, device: device, into: &$0) })
            return
        }
        if page.items.isEmpty {
            print("no readings for \(device) in that range")
            return
        }
        print(ReadingTable.header)
        for r in page.items { print(ReadingTable.row(r)) }
        print("\(page.items.count) reading(s)\(page.nextCursor == nil ? "" : " (more after; raise --limit)")")
    }
}
