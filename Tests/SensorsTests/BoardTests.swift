import Foundation
@testable import Sensors
import Testing

@Suite("Board pin maps")
struct BoardTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test(arguments: Board.all.map(\.id))
    func noPinOrGPIOTwiceAndEveryGPIOOnTheBoardsChips(_ id: String) throws {
        let board = try Board.named(id)
        let physical = board.pins.map(\.physical)
        #expect(Set(physical).count == physical.count, "a header pin listed twice")
        let gpios = board.pins.compactMap(\.gpio) + board.extraGPIOs.map(\.name)
        #expect(Set(gpios).count == gpios.count, "a GPIO on two pins")
        let lines = board.pins.compactMap { p in p.chip.map { "\($0)/\(p.offset!)" } } + board.extraGPIOs.map { "\($0.chip)/\($0.offset)" }
        #expect(Set(lines).count == lines.count, "two names for one line")
        for p in board.pins {
            if let chip = p.chip { #expect(board.chips.contains(chip), "pin \(p.physical) on an unlisted chip") }
            #expect((p.gpio == nil) == (p.chip == nil) && (p.chip == nil) == (p.offset == nil), "pin \(p.physical) is half a GPIO")
            // A pin that is not a GPIO says what it is.
            if p.gpio == nil { #expect(p.note != nil, "pin \(p.physical)") }
        }
        // The kernel's own names point at GPIOs of the board and are unique.
        #expect(Set(board.lineNames.values).count == board.lineNames.count)
        for key in board.lineNames.keys { #expect(gpios.contains(key), "\(key) is not a GPIO of \(id)") }
        #expect(!board.runtimePackages.isEmpty && !board.notes.isEmpty)
    }

    @Test func theRaspberryPiHeaderIsTheKnownOne() throws {
        // Checked against the header's published pinout: 28 GPIOs, 8 ground, 2 × 3V3, 2 × 5V.
        for id in ["raspberry-pi-3", "raspberry-pi-4", "raspberry-pi-5", "raspberry-pi-zero-2-w"] {
            let b = try Board.named(id)
            #expect(b.pins.count == 40 && b.pins.compactMap(\.gpio).count == 28)
            #expect(b.pins.filter { $0.note == "GND" }.map(\.physical) == [6, 9, 14, 20, 25, 30, 34, 39])
            #expect(b.pins.filter { $0.gpio == nil }.allSatisfy { ["3V3", "5V", "GND"].contains($0.note ?? "") }, "the rest is power")
            #expect(Set(b.pins.compactMap(\.offset)) == Set(0...27), "BCM GPIO 0–27, each once")
            #expect(try b.resolve(pin: 11, line: nil) == (b.chips[0], "17"))
            #expect(try b.resolve(pin: nil, line: "GPIO17") == (b.chips[0], "17"))
            #expect(try b.resolve(pin: nil, line: "gpio27") == (b.chips[0], "27"), "names are not case-sensitive")
            #expect(try b.resolve(pin: nil, line: "ID_SDA") == (b.chips[0], "0"), "the kernel's own name")
        }
        #expect(try Board.named("raspberry-pi-5").chips == ["pinctrl-rp1"], "found by label: RP1 moved between gpiochip4 and gpiochip0")
    }

    @Test func badPinsAndNamesAreRefusedSayingWhy() throws {
        let pi = try Board.named("raspberry-pi-4")
        #expect(throws: BoardError.self) { try pi.resolve(pin: 6, line: nil) }
        do { _ = try pi.resolve(pin: 6, line: nil) } catch { #expect(error.description == "pin 6 of Raspberry Pi 4 Model B is GND, not a GPIO") }
        do { _ = try pi.resolve(pin: 41, line: nil) } catch { #expect(error.description.contains("has no pin 41")) }
        do { _ = try pi.resolve(pin: nil, line: "GPIO28") } catch { #expect(error.description.contains("has no GPIO named 'GPIO28'")) }
        do { _ = try Board.named("arduino-uno") } catch { #expect(error.description.contains("unknown board 'arduino-uno': one of raspberry-pi-3")) }
        let linkit = try Board.named("linkit-smart-7688")
        #expect(try linkit.resolve(pin: nil, line: "GPIO43") == ("10000600.gpio-bank1", "11"), "bank = n / 32, line = n mod 32")
        #expect(try linkit.resolve(pin: nil, line: "GPIO2") == ("10000600.gpio-bank0", "2"))
        #expect(try linkit.resolve(pin: 1, line: nil) == ("10000600.gpio-bank1", "11"), "P1 is GPIO43")
        #expect(try linkit.resolve(pin: 14, line: nil) == ("10000600.gpio-bank1", "5"), "P14 is GPIO37")
        #expect(try linkit.resolve(pin: nil, line: "GPIO38") == ("10000600.gpio-bank1", "6"), "a GPIO off the header, by SoC number")
        do { _ = try linkit.resolve(pin: 22, line: nil); Issue.record("P22 accepted") } catch { #expect(error.description.contains("SPI MOSI (the boot flash), not a GPIO")) }
    }

    @Test func theLinkItHeaderIsLibmraasTable() throws {
        // The P labels that are GPIOs: 22 of them (the board's "22 GPIO"), the console UART on P8/P9.
        let linkit = try Board.named("linkit-smart-7688")
        #expect(linkit.pins.compactMap(\.gpio).count == 22)
        #expect(linkit.pins.filter { $0.note?.contains("ttyS2") == true }.map(\.physical) == [8, 9])
        #expect(linkit.pins.compactMap(\.gpio).count + linkit.extraGPIOs.count == 44, "GPIO0…46, each once, but the flash's 7, 8, 9")
        #expect(throws: BoardError.self, "the boot flash's SPI") { try linkit.resolve(pin: nil, line: "GPIO8") }
    }

    @Test(arguments: Board.all.map(\.id))
    func thePublishedBoardFileIsTheNodesTable(_ id: String) throws {
        let path = Self.root.appendingPathComponent("boards/\(id)/board.yaml").path
        let published = try String(contentsOfFile: path, encoding: .utf8)
        #expect(published == (try Board.named(id)).yaml, "boards/\(id)/board.yaml is stale: regenerate it with `flowchain boards \(id) --yaml`")
    }
}
