import Foundation

/// Linux Industrial I/O devices through sysfs: `/sys/bus/iio/devices/iio:deviceN/` with a `name`
/// and channels `in_<type>[N]_input` (already in the ABI's units) or `in_<type>[N]_raw` with
/// optional `_scale` and `_offset` (value = (raw + offset) × scale). Covers DHT11/DHT22 through the
/// kernel's dht11 driver and I²C sensors such as the BME280 and ADS1115.
public enum IIO {
    public struct Device: Sendable, Equatable {
        /// `iio:device0`
        public let id: String
        /// The driver's name (`dht11`, `bme280`, `ads1115`), "" if it gives none.
        public let name: String
        public let channels: [String]
    }

    /// One channel's value in the unit given beside it.
    public struct Sample: Sendable, Equatable {
        public let channel: String
        public let value: Double
        public let unit: String
    }

    static func base(_ sysfs: Sysfs) -> String { sysfs.path("bus/iio/devices") }

    public static func devices(_ sysfs: Sysfs = .current) -> [Device] {
        sysfs.list(base(sysfs)).filter { $0.hasPrefix("iio:device") }.map { id in
            let dir = base(sysfs) + "/" + id
            let name = ((try? sysfs.read(dir + "/name", what: id)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            return Device(id: id, name: name, channels: channels(in: sysfs.list(dir)))
        }
    }

    /// Channel names (`temp`, `humidityrelative`, `voltage0`) from a device directory's files.
    static func channels(in files: [String]) -> [String] {
        var out: [String] = []
        for f in files where f.hasPrefix("in_") && (f.hasSuffix("_input") || f.hasSuffix("_raw")) {
            let name = String(f.dropFirst(3).dropLast(f.hasSuffix("_input") ? 6 : 4))
            if !out.contains(name) { out.append(name) }
        }
        return out
    }

    /// The device a config names: its id (`iio:device0`) or its driver's name (`dht11`).
    public static func find(_ which: String, _ sysfs: Sysfs = .current) throws(SensorError) -> Device {
        let all = devices(sysfs)
        if let d = all.first(where: { $0.id == which }) ?? all.first(where: { $0.name == which }) { return d }
        let known = all.isEmpty ? "none found" : all.map { "\($0.id) (\($0.name))" }.joined(separator: ", ")
        throw SensorError(.missing, "IIO device \(which) not found under \(base(sysfs)) (\(known))")
    }

    /// Reads `channels` (all of the device's when empty) once.
    public static func read(_ device: Device, channels wanted: [String] = [], _ sysfs: Sysfs = .current) throws(SensorError) -> [Sample] {
        let dir = base(sysfs) + "/" + device.id
        let names = wanted.isEmpty ? channels(in: sysfs.list(dir)) : wanted
        guard !names.isEmpty else { throw SensorError(.missing, "IIO \(device.id) (\(device.name)) has no readable channels") }
        var out: [Sample] = []
        for channel in names {
            out.append(try read(channel: channel, dir: dir, device: device, sysfs))
        }
        return out
    }

    static func read(channel: String, dir: String, device: Device, _ sysfs: Sysfs) throws(SensorError) -> Sample {
        let what = "IIO \(device.id) (\(device.name)) channel \(channel)"
        let type = channelType(channel)
        let input = "\(dir)/in_\(channel)_input", raw = "\(dir)/in_\(channel)_raw"
        func number(_ file: String) throws(SensorError) -> Double {
            let text = try sysfs.read(file, what: what).trimmingCharacters(in: .whitespacesAndNewlines)
            guard let v = Double(text), v.isFinite else { throw SensorError(.garbage, "\(what): \(file) holds '\(text.prefix(40))', not a number") }
            return v
        }
        // Shared scale/offset files (in_<type>_scale) apply when a channel has none of its own.
        func optional(_ suffix: String) throws(SensorError) -> Double? {
            for f in ["\(dir)/in_\(channel)_\(suffix)", "\(dir)/in_\(type)_\(suffix)"] where FileManager.default.fileExists(atPath: f) {
                return try number(f)
            }
            return nil
        }
        let unit = units[type] ?? ("", 1)
        if FileManager.default.fileExists(atPath: input) {
            return Sample(channel: channel, value: try number(input) * unit.factor, unit: unit.name)
        }
        guard FileManager.default.fileExists(atPath: raw) else {
            throw SensorError(.missing, "\(what): neither \(input) nor \(raw) exists (channels: \(channels(in: sysfs.list(dir)).joined(separator: ", ")))")
        }
        let value = (try number(raw) + (try optional("offset") ?? 0)) * (try optional("scale") ?? 1)
        return Sample(channel: channel, value: value * unit.factor, unit: unit.name)
    }

    /// `voltage0` → `voltage`, `temp` → `temp`, `humidityrelative` → `humidityrelative`.
    static func channelType(_ channel: String) -> String {
        String(channel.prefix { !$0.isNumber && $0 != "_" })
    }

    /// The IIO ABI's processed units, and the factor to the unit we record.
    static let units: [String: (name: String, factor: Double)] = [
        "temp": ("°C", 0.001),                 // milli degrees Celsius
        "humidityrelative": ("%", 0.001),      // milli percent
        "voltage": ("mV", 1),
        "current": ("mA", 1),
        "pressure": ("kPa", 1),
        "illuminance": ("lx", 1),
        "resistance": ("Ω", 1),
        "power": ("mW", 1),
        "proximity": ("", 1),
        "concentration": ("%", 1),
    ]
}
