extension Board {
    /// Every board the node knows.
    public static let all: [Board] = [
        raspberryPi(id: "raspberry-pi-3", name: "Raspberry Pi 3 Model B/B+", chip: "pinctrl-bcm2835"),
        raspberryPi(id: "raspberry-pi-4", name: "Raspberry Pi 4 Model B", chip: "pinctrl-bcm2711"),
        raspberryPi(id: "raspberry-pi-5", name: "Raspberry Pi 5", chip: "pinctrl-rp1"),
        raspberryPi(id: "raspberry-pi-zero-2-w", name: "Raspberry Pi Zero 2 W", chip: "pinctrl-bcm2835"),
        linkItSmart7688,
    ]

    /// The 40-pin header every Raspberry Pi since the B+ shares: physical pin → BCM GPIO, which
    /// is the line offset on the board's main GPIO chip.
    static let piHeader: [(physical: Int, gpio: Int?, note: String?)] = [
        (1, nil, "3V3"), (2, nil, "5V"), (3, 2, "SDA1"), (4, nil, "5V"), (5, 3, "SCL1"), (6, nil, "GND"),
        (7, 4, "GPCLK0"), (8, 14, "TXD0"), (9, nil, "GND"), (10, 15, "RXD0"), (11, 17, nil), (12, 18, "PWM0"),
        (13, 27, nil), (14, nil, "GND"), (15, 22, nil), (16, 23, nil), (17, nil, "3V3"), (18, 24, nil),
        (19, 10, "SPI0 MOSI"), (20, nil, "GND"), (21, 9, "SPI0 MISO"), (22, 25, nil), (23, 11, "SPI0 SCLK"), (24, 8, "SPI0 CE0"),
        (25, nil, "GND"), (26, 7, "SPI0 CE1"), (27, 0, "ID_SD (HAT EEPROM)"), (28, 1, "ID_SC (HAT EEPROM)"), (29, 5, nil), (30, nil, "GND"),
        (31, 6, nil), (32, 12, "PWM0"), (33, 13, "PWM1"), (34, nil, "GND"), (35, 19, "SPI1 MISO"), (36, 16, nil),
        (37, 26, nil), (38, 20, "SPI1 MOSI"), (39, nil, "GND"), (40, 21, "SPI1 SCLK"),
    ]

    static func raspberryPi(id: String, name: String, chip: String) -> Board {
        Board(
            id: id, name: name, chips: [chip],
            pins: piHeader.map { p in
                Pin(physical: p.physical, gpio: p.gpio.map { "GPIO\($0)" }, chip: p.gpio == nil ? nil : chip, offset: p.gpio, note: p.note)
            },
            extraGPIOs: [],
            // Raspberry Pi OS bookworm's device trees name the header lines GPIO2…GPIO27 and the
            // HAT EEPROM's ID_SDA / ID_SCL.
            lineNames: ["GPIO0": "ID_SDA", "GPIO1": "ID_SCL"],
            runtimePackages: ["libsqlite3-0", "libsodium23", "libssl3", "libmosquitto1", "libgpiod2 (bookworm; libgpiod3 on trixie)", "libstdc++6"],
            notes: """
                Header map: the Raspberry Pi 40-pin header (the same on the 3, 4, 5 and Zero 2 W): \
                physical pin to BCM GPIO, which is the line offset on the \(chip) chip. Chips are \
                found by label. Checked here against the header's published pinout (tests: no pin or \
                GPIO twice, every GPIO of the header on one chip); not run on the board itself.
                """)
    }

    /// The LinkIt Smart 7688's header, by its P labels (P14 is `pin: 14`): P label → MT7688 GPIO
    /// number, as libmraa's board table for the LinkIt and the board's pinout diagram give it. The
    /// SPI master pins serve the boot flash and are left out as GPIOs.
    static let linkItHeader: [(physical: Int, gpio: Int?, note: String?)] = [
        (1, 43, "EPHY LED"), (8, 20, "UART2 (ttyS2, the console)"), (9, 21, "UART2 (ttyS2, the console)"),
        (10, 2, "I2S"), (11, 3, "I2S"), (12, 0, "I2S"), (13, 1, "I2S"), (14, 37, nil), (15, 44, "WLED"),
        (16, 46, "UART1"), (17, 45, "UART1"), (18, 13, "UART0"), (19, 12, "UART0"), (20, 5, "I2C SDA"), (21, 4, "I2C SCL"),
        (22, nil, "SPI MOSI (the boot flash)"), (23, nil, "SPI MISO (the boot flash)"), (24, nil, "SPI CLK (the boot flash)"),
        (25, 6, "SPI CS1"), (26, 18, "PWM0"), (27, 19, "PWM1"), (28, 17, "SPI slave"), (29, 16, "SPI slave"), (30, 15, "SPI slave"),
        (31, 14, "SPI slave"),
    ]

    /// The LinkIt Smart 7688 (MediaTek MT7688AN, MIPS 24KEc, OpenWrt): 47 GPIOs in three banks of
    /// 32, each bank its own chip. It cannot run the Swift node; the C sensor agent runs there.
    static let linkItSmart7688: Board = {
        func chip(_ n: Int) -> String { "10000600.gpio-bank\(n / 32)" }
        let onHeader = Set(linkItHeader.compactMap(\.gpio)), flash: Set = [7, 8, 9]
        return Board(
            id: "linkit-smart-7688", name: "LinkIt Smart 7688", chips: ["10000600.gpio-bank0", "10000600.gpio-bank1", "10000600.gpio-bank2"],
            pins: linkItHeader.map { p in Pin(physical: p.physical, gpio: p.gpio.map { "GPIO\($0)" }, chip: p.gpio.map(chip), offset: p.gpio.map { $0 % 32 }, note: p.note) },
            extraGPIOs: (0...46).filter { !onHeader.contains($0) && !flash.contains($0) }.map { n in (name: "GPIO\(n)", chip: chip(n), offset: n % 32) },
            lineNames: [:],
            runtimePackages: ["none: the sensor agent is linked statically (boards/sensor-agent)"],
            notes: """
                Pins are the header's P labels (pin 14 is P14). MT7688 GPIO n is line n mod 32 of bank \
                n / 32; OpenWrt's gpio-mt7621 driver labels the banks 10000600.gpio-bank0…2. The P \
                label → GPIO map is libmraa's table for the board (the UART pins agree with OpenWrt's \
                ttyS0…2); P22–P24 (GPIO8, 9, 7) drive the boot flash and are not offered as GPIOs. Checked against \
                those published tables, not on a board. GPIOs off the header are named by SoC number.
                """)
    }()
}
