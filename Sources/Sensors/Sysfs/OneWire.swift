import Foundation

/// DS18B20 and other 1-Wire thermometers, read through the kernel's w1 drivers:
/// `/sys/bus/w1/devices/<family>-<serial>/w1_slave`, e.g.
///
///     72 01 4b 46 7f ff 0e 10 57 : crc=57 YES
///     72 01 4b 46 7f ff 0e 10 57 t=23125
///
/// The scratchpad's CRC is checked here as well as by the kernel ("YES").
public enum OneWire {
    /// Families of thermometers the w1_therm driver serves (DS18S20, DS1822, DS18B20, DS1825, DS28EA00).
    public static let thermometerFamilies: Set<String> = ["10", "22", "28", "3b", "42"]

    public struct Device: Sendable, Equatable {
        public let id: String
        public var family: String { String(id.prefix(while: { $0 != "-" })) }
        public var isThermometer: Bool { OneWire.thermometerFamilies.contains(family.lowercased()) }
    }

    /// The 1-Wire devices the kernel knows (bus masters excluded).
    public static func devices(_ sysfs: Sysfs = .current) -> [Device] {
        sysfs.list(sysfs.path("bus/w1/devices")).filter { !$0.hasPrefix("w1_bus_master") && $0.contains("-") }.map(Device.init)
    }

    /// The temperature in °C from one thermometer.
    public static func temperature(of id: String, _ sysfs: Sysfs = .current) throws(SensorError) -> Double {
        let file = sysfs.path("bus/w1/devices/\(id)/w1_slave")
        guard FileManager.default.fileExists(atPath: sysfs.path("bus/w1/devices/\(id)")) else {
            throw SensorError(.missing, "1-Wire device \(id) is not on the bus (\(sysfs.path("bus/w1/devices")) lists: \(devices(sysfs).map(\.id).joined(separator: ", ")))")
        }
        return try parse(try sysfs.read(file, what: "1-Wire \(id)"), id: id)
    }

    /// Parses `w1_slave`: both lines, the kernel's verdict and our own CRC.
    public static func parse(_ text: String, id: String) throws(SensorError) -> Double {
        let lines = text.split(separator: "\n")
        guard lines.count >= 2 else { throw SensorError(.garbage, "1-Wire \(id): expected two lines, got \(lines.count)") }
        let bytes = lines[0].split(separator: " ").prefix(9).compactMap { UInt8($0, radix: 16) }
        guard bytes.count == 9 else { throw SensorError(.garbage, "1-Wire \(id): the scratchpad is not 9 hex bytes: \(lines[0])") }
        guard crc8(bytes[0..<8]) == bytes[8] else {
            throw SensorError(.garbage, "1-Wire \(id): CRC mismatch (computed \(String(format: "%02x", crc8(bytes[0..<8]))), device sent \(String(format: "%02x", bytes[8])))")
        }
        guard lines[0].hasSuffix("YES") else { throw SensorError(.garbage, "1-Wire \(id): the kernel reports a CRC failure: \(lines[0])") }
        guard let range = lines[1].range(of: "t="), let milli = Int(lines[1][range.upperBound...].trimmingCharacters(in: .whitespaces)) else {
            throw SensorError(.garbage, "1-Wire \(id): no t=<millidegrees> in \(lines[1])")
        }
        // 85 °C is the DS18B20's power-on value: a conversion that never happened.
        if milli == 85_000, bytes[0] == 0x50, bytes[1] == 0x05 {
            throw SensorError(.garbage, "1-Wire \(id): the power-on value 85 °C (no conversion took place; check the supply)")
        }
        guard (-55_000...125_000).contains(milli) else { throw SensorError(.garbage, "1-Wire \(id): \(milli) m°C is outside the sensor's range") }
        return Double(milli) / 1000
    }

    /// Dallas/Maxim CRC-8 (polynomial x^8 + x^5 + x^4 + 1, reflected).
    public static func crc8<C: Collection>(_ bytes: C) -> UInt8 where C.Element == UInt8 {
        var crc: UInt8 = 0
        for var b in bytes {
            for _ in 0..<8 {
                let mix = (crc ^ b) & 1
                crc >>= 1
                if mix != 0 { crc ^= 0x8C }
                b >>= 1
            }
        }
        return crc
    }
}
