import FlowchainTesting
import Foundation
import Sensors
import Testing

@Suite("1-Wire and IIO through sysfs-shaped fixtures")
struct SysfsSensorTests {
    @Test func aDS18B20ReadingIsParsedAndItsCRCChecked() throws {
        #expect(OneWire.crc8([0x72, 0x01, 0x4b, 0x46, 0x7f, 0xff, 0x0e, 0x10]) == 0x57)
        #expect(try OneWire.parse(SysfsFixture.goodW1, id: "28-1") == 23.125)
        #expect(throws: SensorError.self) { try OneWire.parse(SysfsFixture.badCRCW1, id: "28-1") }
        do { _ = try OneWire.parse(SysfsFixture.badCRCW1, id: "28-1") } catch {
            #expect(error.kind == .garbage && error.message.contains("CRC mismatch"), "\(error)")
        }
        // The kernel's verdict counts even when the bytes look right.
        let kernelSaysNo = SysfsFixture.goodW1.replacingOccurrences(of: "YES", with: "NO")
        do { _ = try OneWire.parse(kernelSaysNo, id: "28-1"); Issue.record("accepted") } catch { #expect(error.message.contains("kernel reports a CRC failure")) }
        let powerOn = "50 05 4b 46 7f ff 0c 10 1c : crc=1c YES\n50 05 4b 46 7f ff 0c 10 1c t=85000\n"
        do { _ = try OneWire.parse(powerOn, id: "28-1"); Issue.record("accepted") } catch { #expect(error.message.contains("power-on value"), "\(error)") }
        for garbage in ["", "72 01\n", "zz zz zz zz zz zz zz zz zz : crc=zz YES\nt=1\n", SysfsFixture.goodW1.replacingOccurrences(of: "t=23125", with: "t=hot")] {
            #expect(throws: SensorError.self) { try OneWire.parse(garbage, id: "28-1") }
        }
    }

    @Test func thermometersAreFoundAndReadFromTheTree() throws {
        let sys = SysfsFixture()
        try sys.w1("28-000005e2fdc3", SysfsFixture.goodW1)
        try sys.w1("28-00000bad0c4c", SysfsFixture.badCRCW1)
        let sysfs = Sysfs(root: sys.root)
        #expect(OneWire.devices(sysfs).map(\.id) == ["28-000005e2fdc3", "28-00000bad0c4c"], "bus masters are not devices")
        #expect(OneWire.devices(sysfs).allSatisfy { $0.isThermometer })
        #expect(try OneWire.temperature(of: "28-000005e2fdc3", sysfs) == 23.125)
        do { _ = try OneWire.temperature(of: "28-00000bad0c4c", sysfs); Issue.record("accepted") } catch { #expect(error.kind == .garbage) }
        do { _ = try OneWire.temperature(of: "28-gone", sysfs); Issue.record("accepted") } catch {
            #expect(error.kind == .missing && error.message.contains("28-000005e2fdc3"), "says what is there: \(error)")
        }
        try sys.failWithEIO("bus/w1/devices/28-000005e2fdc3/w1_slave")
        do { _ = try OneWire.temperature(of: "28-000005e2fdc3", sysfs); Issue.record("accepted") } catch {
            #expect(error.kind == .io && error.code == EIO && error.message.contains("Input/output error"), "\(error)")
        }
    }

    @Test func iioChannelsAreReadInTheirUnitsRawOrProcessed() throws {
        let sys = SysfsFixture()
        try sys.iio("iio:device0", name: "dht11", ["in_temp_input": "23125", "in_humidityrelative_input": "45000"])
        try sys.iio("iio:device1", name: "ads1115", ["in_voltage0_raw": "1234", "in_voltage1_raw": "-20", "in_voltage_scale": "0.125000000",
                                                    "in_voltage1_offset": "4"])
        try sys.iio("iio:device2", name: "bme280", ["in_pressure_input": "101.325", "in_temp_input": "21450", "in_humidityrelative_input": "garbage"])
        let sysfs = Sysfs(root: sys.root)
        #expect(IIO.devices(sysfs).map(\.name) == ["dht11", "ads1115", "bme280"])
        let dht = try IIO.find("dht11", sysfs)
        #expect(dht.id == "iio:device0" && Set(dht.channels) == ["temp", "humidityrelative"])
        let samples = try IIO.read(dht, sysfs)
        #expect(samples.first { $0.channel == "temp" }.map { [$0.value] } == [23.125] && samples.first { $0.channel == "temp" }?.unit == "°C")
        #expect(samples.first { $0.channel == "humidityrelative" }?.value == 45 && samples.first { $0.channel == "humidityrelative" }?.unit == "%")
        let adc = try IIO.read(try IIO.find("iio:device1", sysfs), channels: ["voltage0", "voltage1"], sysfs)
        #expect(adc.map(\.value) == [154.25, -2.0] && adc.allSatisfy { $0.unit == "mV" }, "(raw + offset) × the shared scale: \(adc)")

        let bme = try IIO.find("bme280", sysfs)
        #expect(try IIO.read(bme, channels: ["pressure"], sysfs).first?.value == 101.325)
        do { _ = try IIO.read(bme, sysfs); Issue.record("accepted") } catch {
            #expect(error.kind == .garbage && error.message.contains("'garbage', not a number"), "\(error)")
        }
        do { _ = try IIO.read(bme, channels: ["illuminance"], sysfs); Issue.record("accepted") } catch {
            #expect(error.kind == .missing && error.message.contains("channels:"), "\(error)")
        }
        do { _ = try IIO.find("bmp180", sysfs); Issue.record("accepted") } catch {
            #expect(error.kind == .missing && error.message.contains("iio:device2 (bme280)"), "says what is there: \(error)")
        }
        // The dht11 driver answers EIO when the sensor does not reply in time.
        try sys.failWithEIO("bus/iio/devices/iio:device0/in_temp_input")
        do { _ = try IIO.read(dht, sysfs); Issue.record("accepted") } catch { #expect(error.kind == .io && error.code == EIO, "\(error)") }
        // And a device that disappears.
        sys.remove("bus/iio/devices/iio:device0")
        do { _ = try IIO.read(dht, sysfs); Issue.record("accepted") } catch { #expect(error.kind == .missing, "\(error)") }
    }
}
