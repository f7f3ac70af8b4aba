import Ledger
import Sensors

extension [ConfigFile.SensorSection] {
    /// The sensors these entries describe; errors name the entry and key (`sensors[1].line`).
    /// With `board`, GPIO sensors may give a header `pin` or a `line` named as the board names it
    /// (GPIO17) and leave out `chip`.
    public func sensorConfigurations(board: Board? = nil) throws -> [SensorConfiguration] {
        var names = Set<String>()
        return try enumerated().map { i, s in
            let at = "sensors[\(i)]"
            if let why = DeviceID.problem(with: s.name) { throw NodeError.configuration("\(at).name: \(why) (the name is the device id of its readings)") }
            guard names.insert(s.name).inserted else { throw NodeError.configuration("\(at).name: '\(s.name)' names two sensors") }
            return SensorConfiguration(name: s.name, kind: try s.kind(at: at, board: board))
        }
    }
}

extension ConfigFile.SensorSection {
    static let types = ["gpio-input", "pulse-counter", "iio", "w1"]

    func kind(at: String, board: Board? = nil) throws -> SensorConfiguration.Kind {
        var chip = self.chip, line = self.line
        if type == "gpio-input" || type == "pulse-counter" {
            if let board, chip == nil || pin != nil {
                if pin != nil, line != nil { throw NodeError.configuration("\(at): give 'pin' or 'line', not both") }
                do { (chip, line) = try board.resolve(pin: pin, line: line) } catch { throw NodeError.configuration("\(at): \(error)") }
            } else if pin != nil {
                throw NodeError.configuration("\(at).pin needs 'board:' (which header it is on), e.g. board: raspberry-pi-4")
            }
        } else if pin != nil {
            throw NodeError.configuration("\(at).pin does not apply to type \(type)")
        }
        func required(_ value: String?, _ key: String) throws -> String {
            guard let value, !value.isEmpty else { throw NodeError.configuration("\(at).\(key) is required for type \(type)") }
            return value
        }
        func notFor(_ keys: [(String, Bool)]) throws {
            if let (key, _) = keys.first(where: { $0.1 }) { throw NodeError.configuration("\(at).\(key) does not apply to type \(type)") }
        }
        let every: Duration
        if let interval {
            guard interval >= 0.01, interval <= 86_400 else { throw NodeError.configuration("\(at).interval: \(interval) is not 0.01…86400 seconds") }
            every = .milliseconds(Int64(interval * 1000))
        } else {
            every = .seconds(type == "pulse-counter" ? 60 : 30)
        }
        let bias: GPIO.Bias = try bias.map { text in
            guard let b = GPIO.Bias(rawValue: text) else { throw NodeError.configuration("\(at).bias: '\(text)' is not one of \(GPIO.Bias.allCases.map(\.rawValue).joined(separator: ", "))") }
            return b
        } ?? .asIs
        let debouncePeriod: Duration = try debounce.map { ms in
            guard (0...1000).contains(ms) else { throw NodeError.configuration("\(at).debounce: \(ms) is not 0…1000 ms") }
            return .milliseconds(ms)
        } ?? .zero
        switch type {
        case "gpio-input":
            try notFor([("edge", edge != nil), ("interval", interval != nil), ("device", device != nil), ("channels", channels != nil), ("id", id != nil)])
            return .gpioInput(chip: try required(chip, "chip"), line: try required(line, "line"), bias: bias, activeLow: activeLow ?? false,
                              debounce: debounce == nil ? .milliseconds(10) : debouncePeriod)
        case "pulse-counter":
            try notFor([("device", device != nil), ("channels", channels != nil), ("id", id != nil), ("activeLow", activeLow != nil)])
            let e: GPIO.Edge = try edge.map { text in
                guard let e = GPIO.Edge(rawValue: text), e != .none else { throw NodeError.configuration("\(at).edge: '\(text)' is not rising, falling or both") }
                return e
            } ?? .rising
            return .pulseCounter(chip: try required(chip, "chip"), line: try required(line, "line"), edge: e, bias: bias, debounce: debouncePeriod, interval: every)
        case "iio":
            try notFor([("chip", chip != nil), ("line", line != nil), ("bias", self.bias != nil), ("edge", edge != nil), ("id", id != nil), ("debounce", debounce != nil), ("activeLow", activeLow != nil)])
            return .iio(device: try required(device, "device"), channels: channels ?? [], interval: every)
        case "w1":
            try notFor([("chip", chip != nil), ("line", line != nil), ("bias", self.bias != nil), ("edge", edge != nil), ("device", device != nil), ("channels", channels != nil), ("debounce", debounce != nil), ("activeLow", activeLow != nil)])
            return .w1(id: try required(id, "id"), interval: every)
        default:
            throw NodeError.configuration("\(at).type: '\(type)' is not one of \(Self.types.joined(separator: ", "))")
        }
    }
}
