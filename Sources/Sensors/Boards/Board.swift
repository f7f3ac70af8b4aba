/// A board the node knows the GPIO header of: which chip and line offset each header pin is, so a
/// sensors config can say `pin: 11` or `line: GPIO17` instead of a chip and an offset. The same
/// data is published as `boards/<id>/board.yaml` (`flowchain boards <id> --yaml` writes it).
public struct Board: Sendable, Equatable {
    /// One pin of the header.
    public struct Pin: Sendable, Equatable {
        /// The header's own numbering (physical pin 1…40 on a Raspberry Pi).
        public let physical: Int
        /// The name the board's documentation uses for the GPIO (GPIO17), nil for power and ground.
        public let gpio: String?
        /// The chip (by label) and line offset of that GPIO.
        public let chip: String?
        public let offset: Int?
        /// What else the pin is (3V3, 5V, GND, SDA1, TXD0 …).
        public let note: String?
    }

    /// `raspberry-pi-4`: what `board:` in the config names.
    public let id: String
    public let name: String
    /// Which chip labels the board's GPIO lines are on (found by label, not by number: the Pi 5's
    /// RP1 chip was gpiochip4 on its first kernels and gpiochip0 later).
    public let chips: [String]
    public let pins: [Pin]
    /// Offsets of GPIOs the board has beyond its header pins (named GPIOn too), per chip.
    public let extraGPIOs: [(name: String, chip: String, offset: Int)]
    /// The kernel's own names of lines (`gpioinfo`), where they are known and differ from `gpio`.
    public let lineNames: [String: String]
    /// Packages the node needs at run time there (Debian / Raspberry Pi OS names, or OpenWrt's).
    public let runtimePackages: [String]
    /// What was and was not checked, how.
    public let notes: String

    public static func == (a: Board, b: Board) -> Bool {
        a.id == b.id && a.pins == b.pins && a.chips == b.chips && a.lineNames == b.lineNames
            && a.extraGPIOs.map { "\($0.name) \($0.chip) \($0.offset)" } == b.extraGPIOs.map { "\($0.name) \($0.chip) \($0.offset)" }
    }

    /// Where a config's pin or line is: `pin` (a physical pin number) or `line` (GPIO17, or a
    /// kernel line name of the board). Nil `chip` in the config means the board's chip.
    public func resolve(pin: Int?, line: String?) throws(BoardError) -> (chip: String, line: String) {
        if let pin {
            guard let p = pins.first(where: { $0.physical == pin }) else { throw .init("\(name) has no pin \(pin) (its header has pins 1…\(pins.map(\.physical).max() ?? 0))") }
            guard let chip = p.chip, let offset = p.offset else { throw .init("pin \(pin) of \(name) is \(p.note ?? "not a GPIO"), not a GPIO") }
            return (chip, String(offset))
        }
        guard let line else { throw .init("give 'pin' (a header pin of \(name)) or 'line'") }
        let wanted = line.uppercased()
        if let p = pins.first(where: { $0.gpio?.uppercased() == wanted }), let chip = p.chip, let offset = p.offset { return (chip, String(offset)) }
        if let e = extraGPIOs.first(where: { $0.name.uppercased() == wanted }) { return (e.chip, String(e.offset)) }
        if let named = lineNames.first(where: { $0.value == line }), let p = pins.first(where: { $0.gpio == named.key }), let chip = p.chip, let offset = p.offset {
            return (chip, String(offset))
        }
        throw .init("\(name) has no GPIO named '\(line)' (its header: \(pins.compactMap(\.gpio).joined(separator: ", ")))")
    }

    /// The board `id` names, or an error listing the known ones.
    public static func named(_ id: String) throws(BoardError) -> Board {
        guard let b = all.first(where: { $0.id == id }) else { throw .init("unknown board '\(id)': one of \(all.map(\.id).joined(separator: ", "))") }
        return b
    }
}

public struct BoardError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}
