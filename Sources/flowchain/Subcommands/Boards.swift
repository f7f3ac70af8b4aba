import ArgumentParser
import Foundation
import Sensors

struct BoardsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "boards",
        abstract: "The boards the node knows the GPIO header of, and a board's pin map.",
        discussion: """
            With `board: raspberry-pi-4` in the node's config (or --board), a sensor names its GPIO \
            by header pin (`pin: 11`) or by the board's GPIO name (`line: GPIO17`) and the chip is \
            the board's. Without an id this lists the boards; with one it prints the pin map \
            (--yaml: as boards/<id>/board.yaml).
            """
    )

    @Argument(help: "A board id (raspberry-pi-4 …); none lists them.") var id: String?
    @Flag(help: "Print the board as YAML (the format of boards/<id>/board.yaml).") var yaml = false

    func run() throws {
        guard let id else {
            for b in Board.all { print("\(b.id.padding(toLength: 24, withPad: " ", startingAt: 0)) \(b.name) (chips: \(b.chips.joined(separator: ", ")))") }
            return
        }
        let board: Board
        do { board = try Board.named(id) } catch { throw ValidationError(error.description) }
        if yaml { print(board.yaml, terminator: ""); return }
        print("\(board.name): GPIO chip\(board.chips.count > 1 ? "s" : "") \(board.chips.joined(separator: ", "))")
        for p in board.pins {
            let what = p.gpio.map { g in "\(g)  line \(p.offset!) of \(p.chip!)\(p.note.map { "  (\($0))" } ?? "")" } ?? (p.note ?? "")
            print("  pin \(String(p.physical).padding(toLength: 3, withPad: " ", startingAt: 0)) \(what)")
        }
        for e in board.extraGPIOs { print("  \(e.name.padding(toLength: 7, withPad: " ", startingAt: 0)) line \(e.offset) of \(e.chip)") }
        print("runtime packages: \(board.runtimePackages.joined(separator: ", "))")
        print(board.notes)
    }
}
