import FlowchainWire
import Ledger

/// One sensor the node reads: its device id (`name`) and what it is.
public struct SensorConfiguration: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// A digital input: each (debounced) change of state is a reading.
        case gpioInput(chip: String, line: String, bias: GPIO.Bias, activeLow: Bool, debounce: Duration)
        /// Edges counted per interval (flow meters, rain gauges, anemometers): one reading per interval.
        case pulseCounter(chip: String, line: String, edge: GPIO.Edge, bias: GPIO.Bias, debounce: Duration, interval: Duration)
        /// Linux IIO channels (by device id or driver name), sampled every interval.
        case iio(device: String, channels: [String], interval: Duration)
        /// A 1-Wire thermometer (DS18B20 …), sampled every interval.
        case w1(id: String, interval: Duration)
    }

    /// The device id of its readings.
    public var name: String
    public var kind: Kind

    public init(name: String, kind: Kind) {
        self.name = name
        self.kind = kind
    }

    public var typeName: String {
        switch kind {
        case .gpioInput: "gpio-input"
        case .pulseCounter: "pulse-counter"
        case .iio: "iio"
        case .w1: "w1"
        }
    }

    public var source: ReadingSource {
        switch kind {
        case .gpioInput, .pulseCounter: .gpio
        case .iio: .iio
        case .w1: .w1
        }
    }
}

/// A reading a sensor produced: its payload and time (ms since the epoch).
public struct SensorSample: Sendable, Equatable {
    public let payload: [String: JSONValue]
    public let time: Int64

    public var json: String { String(decoding: JSONValue.object(payload).jsonBytes, as: UTF8.self) }
}

extension JSONValue {
    /// A measured value, rounded to 6 decimals (so 23125 × 0.001 is 23.125, not 23.125000000000004).
    static func measured(_ v: Double) -> JSONValue {
        let r = (v * 1e6).rounded() / 1e6
        if r == r.rounded(), abs(r) < 1e15 { return .number(String(Int64(r))) }
        return .number("\(r)")
    }
}
