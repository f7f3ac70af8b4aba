import Foundation

/// A directory shaped like the parts of /sys the sensors read (`bus/iio/devices`, `bus/w1/devices`),
/// with the cases real hardware produces: good readings, bad CRCs, text that is not a number, EIO
/// on read (a file that is a link to /proc/self/mem, whose first page always answers EIO) and
/// devices that disappear.
public final class SysfsFixture: Sendable {
    public let dir: TemporaryDirectory
    public var root: String { dir.path }

    /// A DS18B20 scratchpad reading 23.125 °C, CRC correct (0x57 over the first 8 bytes).
    public static let goodW1 = "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n"
    /// The same with one byte changed in transit: the CRC no longer matches (the kernel says NO).
    public static let badCRCW1 = "72 01 4b 46 7f ff 0e 11 57 : crc=57 NO\n72 01 4b 46 7f ff 0e 11 57 t=23125\n"

    public init() {
        dir = TemporaryDirectory("sysfs")
        try? FileManager.default.createDirectory(atPath: dir.file("bus/iio/devices"), withIntermediateDirectories: true)
        try? FileManager.default.createDirectory(atPath: dir.file("bus/w1/devices/w1_bus_master1"), withIntermediateDirectories: true)
    }

    public func w1(_ id: String, _ content: String) throws {
        let d = dir.file("bus/w1/devices/\(id)")
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        try content.write(toFile: d + "/w1_slave", atomically: true, encoding: .utf8)
    }

    /// An IIO device with `name` and files (`in_temp_input` → "23125").
    public func iio(_ id: String, name: String, _ files: [String: String]) throws {
        let d = dir.file("bus/iio/devices/\(id)")
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        try (name + "\n").write(toFile: d + "/name", atomically: true, encoding: .utf8)
        for (f, v) in files { try (v + "\n").write(toFile: d + "/" + f, atomically: true, encoding: .utf8) }
    }

    /// Makes `file` of a device answer EIO when read, as a sensor that does not respond does.
    public func failWithEIO(_ relative: String) throws {
        let path = dir.file(relative)
        try? FileManager.default.removeItem(atPath: path)
        try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: "/proc/self/mem")
    }

    public func remove(_ relative: String) { try? FileManager.default.removeItem(atPath: dir.file(relative)) }
}
