import ArgumentParser
import FlowchainNode
import Foundation
import Sensors

/// `flowchain sensors`: what this machine has, and the configured sensors read by hand.
struct SensorsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sensors",
        abstract: "List the GPIO chips, IIO and 1-Wire devices here; read or watch a configured sensor.",
        discussion: """
            Sensors are configured in the node's config file (`sensors:`, docs/sensors.md); the \
            node reads them itself and records their readings, signed by its key.

              flowchain sensors list                            # chips, lines, IIO, 1-Wire
              flowchain sensors read greenhouse --config node.yaml
              flowchain sensors watch door --config node.yaml  # until Ctrl-C

            GPIO goes through the character device (/dev/gpiochipN) and libgpiod; sysfs is read \
            under $FLOWCHAIN_SYSFS when set (default /sys).
            """,
        subcommands: [SensorsList.self, SensorsRead.self, SensorsWatch.self]
    )
}

struct SensorsList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Show the GPIO chips (with their lines), IIO devices and 1-Wire devices found here.")

    func run() throws {
        let sysfs = Sysfs.current
        let chips = GPIO.chips()
        emit("GPIO chips (\(GPIO.backend)):")
        if chips.isEmpty {
            let denied = ((try? FileManager.default.contentsOfDirectory(atPath: "/dev")) ?? []).filter { $0.hasPrefix("gpiochip") }
            emit(denied.isEmpty ? "  none (no /dev/gpiochip*)" : "  \(denied.sorted().joined(separator: ", ")) exist but cannot be opened: check the permissions (ls -l /dev/gpiochip*)")
        }
        for info in chips {
            emit("  \(info.name)  label \(info.label)  \(info.lines) lines  \(info.path)")
            guard let chip = try? GPIO.Chip(info.path), let lines = try? chip.lines() else { continue }
            for l in lines where !l.name.isEmpty || l.used {
                var notes: [String] = []
                if l.used { notes.append("in use by \(l.consumer.isEmpty ? "?" : l.consumer)") }
                if l.isOutput { notes.append("output") }
                if l.activeLow { notes.append("active-low") }
                if l.bias != .asIs { notes.append(l.bias.rawValue) }
                emit("    \(String(l.offset).padding(toLength: 4, withPad: " ", startingAt: 0)) \(l.name.isEmpty ? "-" : l.name)\(notes.isEmpty ? "" : "  (" + notes.joined(separator: ", ") + ")")")
            }
        }
        let iio = IIO.devices(sysfs)
        emit("IIO devices (\(sysfs.path("bus/iio/devices"))):")
        if iio.isEmpty { emit("  none") }
        for d in iio { emit("  \(d.id)  \(d.name.isEmpty ? "-" : d.name)  channels: \(d.channels.isEmpty ? "none" : d.channels.joined(separator: ", "))") }
        let w1 = OneWire.devices(sysfs)
        emit("1-Wire devices (\(sysfs.path("bus/w1/devices"))):")
        if w1.isEmpty { emit("  none") }
        for d in w1 { emit("  \(d.id)\(d.isThermometer ? "  thermometer" : "")") }
    }
}

/// The configured sensor `name` from a config file.
struct SensorChoice: ParsableArguments {
    @Argument(help: "The sensor's name in the config file's sensors: section.") var name: String
    @Option(help: ArgumentHelp("The node's config file (YAML or JSON) with the sensors: section.", valueName: "file"))
    var config: String = "node.yaml"

    func sensor() throws -> SensorConfiguration {
        let file = try ConfigFile.load(config)
        let board: Board?
        do { board = try file.board.map { id throws(BoardError) in try Board.named(id) } } catch { throw ValidationError("\(config): board: \(error)") }
        let all: [SensorConfiguration]
        do { all = try file.sensors?.sensorConfigurations(board: board) ?? [] } catch { throw file.locating(error) }
        guard let s = all.first(where: { $0.name == name }) else {
            throw ValidationError("\(config) configures no sensor named \(name)\(all.isEmpty ? " (it has no sensors: section)" : " (it has: \(all.map(\.name).joined(separator: ", ")))")")
        }
        return s
    }
}

struct SensorsRead: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "read", abstract: "Read one configured sensor once and print its reading (JSON).")
    @OptionGroup var choice: SensorChoice

    func run() async throws {
        let sensor = try choice.sensor()
        do {
            let sample = try await SensorReader(sensor, consumer: "flowchain-sensors-read").readOnce()
            emit(sample.json)
        } catch let e as SensorError {
            throw failure("\(sensor.name) (\(sensor.typeName)): \(e.message)")
        }
    }
}

struct SensorsWatch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "watch", abstract: "Print a configured sensor's readings as they come, until interrupted.")
    @OptionGroup var choice: SensorChoice
    @Option(help: "Stop after this many readings (default: never).") var count: Int?

    func run() async throws {
        let sensor = try choice.sensor()
        var n = 0
        do {
            for try await sample in SensorReader(sensor, consumer: "flowchain-sensors-watch").samples() {
                emit("\(ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(sample.time) / 1000)))  \(sample.json)")
                n += 1
                if let count, n >= count { return }
            }
        } catch let e as SensorError {
            throw failure("\(sensor.name) (\(sensor.typeName)): \(e.message)")
        }
    }
}
