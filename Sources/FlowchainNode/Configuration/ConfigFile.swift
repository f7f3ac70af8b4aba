import Foundation
import Yams

/// The optional configuration file (`flowchain node --config FILE`): YAML, or JSON (which YAML
/// reads too). Every key is optional; precedence is command-line flag > environment (`HOST`,
/// `PORT`, `FLOWCHAIN_TOKEN`, `FLOWCHAIN_MQTT`) > this file > built-in default. Unknown keys are
/// refused, with their line. See docs/configuration.md.
public struct ConfigFile: Decodable, Sendable, Equatable {
    public var dataDir: String?
    public var host: String?
    public var port: Int?
    public var token: String?
    public var protectReads: Bool?
    public var blockInterval: Int?
    public var maxBlockReadings: Int?
    public var maxPayload: Int?
    public var maxFrameBytes: Int?
    public var maxConnections: Int?
    public var rateLimit: Int?
    public var pingInterval: Int?
    public var headerTimeout: Int?
    public var idleTimeout: Int?
    public var logLevel: String?
    /// kernel, trusted or untrusted: whether the time stamps the node takes are synchronised.
    public var clockSync: String?
    /// ms a commit waits for more readings to share its transaction.
    public var commitWindow: Int?
    /// TLS for the server: PEM certificate and key.
    public var tlsCertificate: String?
    public var tlsKey: String?
    /// One broker (a mapping) or several (a list of mappings).
    public var mqtt: OneOrMany<MQTTSection>?
    /// The node's own sensors.
    public var sensors: [SensorSection]?
    /// The board the node runs on (`raspberry-pi-4` …): sensors may then name header pins.
    public var board: String?
    /// The peer network.
    public var peers: PeersSection?
    /// What the ledger keeps: payloads older than `maxAge` or beyond `maxSize` are pruned.
    public var retention: RetentionSection?

    public struct RetentionSection: Decodable, Sendable, Equatable {
        /// `30d`, `12h`, `90m`: blocks sealed longer ago lose their readings' payloads.
        public var maxAge: String?
        /// `2GB`, `500MB`, `1GiB`: the oldest blocks are pruned until the file is at most this large.
        public var maxSize: String?
        enum CodingKeys: String, CodingKey, CaseIterable { case maxAge, maxSize }
    }

    public struct PeersSection: Decodable, Sendable, Equatable {
        /// host:port of peers to join through.
        public var join: [String]?
        /// host:port other nodes reach this one at.
        public var advertise: String?
        /// Copies of each reading (r).
        public var replicas: Int?
        /// owner or replica.
        public var ack: String?
        /// Dial peers with wss://; check their certificates against this CA.
        public var tls: Bool?
        public var ca: String?
        enum CodingKeys: String, CodingKey, CaseIterable { case join, advertise, replicas, ack, tls, ca }
    }

    /// The file's name as given, and the line of each key it holds (dotted path, `peers.ack`,
    /// `mqtt[1].url`): errors about a value the file gave name both (`place(of:)`).
    public var name = ""
    public var lines: [String: Int] = [:]

    /// `config file NAME, line N: 'key'` when the file gave `key`; nil when it did not (the value
    /// then came from a flag, the environment or a default).
    public func place(of key: String) -> String? {
        lines[key].map { "\(at($0)) '\(key)'" }
    }

    private func at(_ line: Int) -> String { "config file \(name), line \(line):" }

    /// A section's error that starts with the key it is about (`sensors[0].interval: …`), with
    /// the file and the key's line in front; other errors as they are.
    public func locating(_ error: any Error) -> any Error {
        guard case let NodeError.configuration(message) = error, let colon = message.range(of: ": "),
              let line = lines[String(message[..<colon.lowerBound])] else { return error }
        return NodeError.configuration("\(at(line)) \(message)")
    }

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case dataDir, host, port, token, protectReads, blockInterval, maxBlockReadings, maxPayload
        case maxFrameBytes, maxConnections, rateLimit, pingInterval, headerTimeout, idleTimeout, logLevel, mqtt, sensors, peers
        case tlsCertificate, tlsKey, clockSync, board, commitWindow, retention
    }

    /// One entry of `sensors:` (docs/sensors.md); which keys apply depends on `type`.
    public struct SensorSection: Decodable, Sendable, Equatable {
        /// The device id of its readings.
        public var name: String
        /// gpio-input, pulse-counter, iio or w1.
        public var type: String
        /// GPIO: the chip's label, name or path, and the line's name or offset.
        public var chip: String?
        public var line: String?
        /// GPIO, with `board:`: the header pin (physical number) instead of chip and line.
        public var pin: Int?
        /// GPIO: as-is (default), disabled, pull-up or pull-down.
        public var bias: String?
        public var activeLow: Bool?
        /// GPIO: debounce period in ms.
        public var debounce: Int?
        /// pulse-counter: rising (default), falling or both.
        public var edge: String?
        /// Seconds between readings (pulse-counter, iio, w1).
        public var interval: Double?
        /// iio: the device's id (iio:device0) or driver name (dht11); its channels (default all).
        public var device: String?
        public var channels: [String]?
        /// w1: the thermometer's id (28-000005e2fdc3).
        public var id: String?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case name, type, chip, line, pin, bias, activeLow, debounce, edge, interval, device, channels, id
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            name = try c.decode(String.self, forKey: .name)
            type = try c.decode(String.self, forKey: .type)
            chip = try c.decodeIfPresent(String.self, forKey: .chip)
            // A line is a name (GPIO17) or an offset (17).
            if let n = try? c.decodeIfPresent(Int.self, forKey: .line) { line = String(n) } else { line = try c.decodeIfPresent(String.self, forKey: .line) }
            pin = try c.decodeIfPresent(Int.self, forKey: .pin)
            bias = try c.decodeIfPresent(String.self, forKey: .bias)
            activeLow = try c.decodeIfPresent(Bool.self, forKey: .activeLow)
            debounce = try c.decodeIfPresent(Int.self, forKey: .debounce)
            edge = try c.decodeIfPresent(String.self, forKey: .edge)
            interval = try c.decodeIfPresent(Double.self, forKey: .interval)
            device = try c.decodeIfPresent(String.self, forKey: .device)
            channels = try c.decodeIfPresent([String].self, forKey: .channels)
            id = try c.decodeIfPresent(String.self, forKey: .id)
        }
    }

    /// `mqtt:` — the broker the node bridges and the rules for its topics.
    public struct MQTTSection: Decodable, Sendable, Equatable {
        /// `mqtt://[user:password@]host[:port]` or `mqtts://…`.
        public var broker: String
        /// A name for this broker in logs and in the outbox's saved position (default host:port).
        public var name: String?
        public var clientId: String?
        public var username: String?
        public var password: String?
        /// TLS: the CA file that signed the broker's certificate, and a client certificate and key.
        public var ca: String?
        public var certificate: String?
        public var key: String?
        /// "3.1.1" (default) or "5".
        public var protocolVersion: String?
        public var keepalive: Int?
        /// Publish the ledger's readings and blocks back to the broker, under `prefix`.
        public var publish: Bool?
        /// Default `flowchain/{node}` ({node}: the first 12 hex digits of the node's key).
        public var prefix: String?
        /// Republish messages that could not become readings under this topic prefix, as
        /// `<deadLetter>/<reason>/<original topic>` with the original payload (nil: don't).
        public var deadLetter: String?
        public var rules: [Rule]

        enum CodingKeys: String, CodingKey, CaseIterable {
            case broker, name, clientId, username, password, ca, certificate, key, protocolVersion, keepalive, publish, prefix, deadLetter, rules
        }

        /// One topic filter and how its messages become readings.
        public struct Rule: Decodable, Sendable, Equatable {
            public var topic: String
            /// A fixed device id for every matching topic…
            public var device: String?
            /// …or the topic level holding it (0-based; negative counts from the end). Default:
            /// the filter's first `+` level, else the topic's last level.
            public var deviceLevel: Int?
            /// json, value, key-value or auto (default).
            public var format: String?
            /// Where a bare value is stored (default `value`).
            public var field: String?
            /// A payload field with the reading's time (ms, or s below 10^11).
            public var timeField: String?
            /// The payload field the topic is recorded in (default `topic`; "" for none).
            public var topicField: String?
            /// A payload field holding the device's own message counter (gaps are recorded).
            public var seqField: String?
            public var qos: Int?

            enum CodingKeys: String, CodingKey, CaseIterable {
                case topic, device, deviceLevel, format, field, timeField, topicField, seqField, qos
            }
        }
    }

    /// The keys each section may hold, for refusing typos with their line.
    indirect enum Schema: Sendable {
        case value
        case object([String: Schema])
        case list(Schema)
        /// One item, or a list of them.
        case oneOrList(Schema)
    }

    static let schema: Schema = {
        var root: [String: Schema] = [:]
        for key in CodingKeys.allCases where key != .mqtt && key != .sensors && key != .peers && key != .retention { root[key.rawValue] = .value }
        root["retention"] = .object(Dictionary(uniqueKeysWithValues: RetentionSection.CodingKeys.allCases.map { ($0.rawValue, Schema.value) }))
        root["peers"] = .object(Dictionary(uniqueKeysWithValues: PeersSection.CodingKeys.allCases.map { ($0.rawValue, Schema.value) }))
        root["sensors"] = .list(.object(Dictionary(uniqueKeysWithValues: SensorSection.CodingKeys.allCases.map { ($0.rawValue, Schema.value) })))
        var mqtt: [String: Schema] = [:]
        for key in MQTTSection.CodingKeys.allCases where key != .rules { mqtt[key.rawValue] = .value }
        mqtt["rules"] = .list(.object(Dictionary(uniqueKeysWithValues: MQTTSection.Rule.CodingKeys.allCases.map { ($0.rawValue, Schema.value) })))
        root["mqtt"] = .oneOrList(.object(mqtt))
        return .object(root)
    }()

    /// Reads and checks `path`; every error names the file, the line and the key.
    public static func load(_ path: String) throws -> ConfigFile {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw NodeError.configuration("cannot read config file \(path)")
        }
        return try parse(text, name: path)
    }

    public static func parse(_ text: String, name: String = "config") throws -> ConfigFile {
        let node: Yams.Node
        do {
            guard let composed = try Yams.compose(yaml: text) else { return ConfigFile() }
            node = composed
        } catch let error as YamlError {
            throw NodeError.configuration("config file \(name): not valid YAML or JSON: \(error)")
        }
        guard node.mapping != nil else { throw NodeError.configuration("config file \(name) must hold a mapping of keys (e.g. `port: 8000`)") }
        var lines: [String: Int] = [:]
        try check(node, against: schema, path: "", name: name, lines: &lines)
        do {
            var file = try YAMLDecoder().decode(ConfigFile.self, from: node)
            file.name = name
            file.lines = lines
            return file
        } catch let error as Swift.DecodingError {
            let (path, why): ([any CodingKey], String) = switch error {
            case let .typeMismatch(type, c): (c.codingPath, "must be \(describe(type))")
            case let .valueNotFound(type, c): (c.codingPath, "must be \(describe(type)), not empty")
            case let .keyNotFound(key, c): (c.codingPath + [key], "is required")
            case let .dataCorrupted(c): (c.codingPath, c.debugDescription)
            @unknown default: ([], "\(error)")
            }
            let line = locate(path, in: node).map { ", line \($0)" } ?? ""
            throw NodeError.configuration("config file \(name)\(line): '\(dotted(path))' \(why)")
        }
    }

    static func check(_ node: Yams.Node, against schema: Schema, path: String, name: String, lines: inout [String: Int]) throws {
        switch schema {
        case .value:
            return
        case let .oneOrList(element):
            if let items = node.sequence {
                try checkItems(items, against: element, path: path, name: name, lines: &lines)
            } else {
                try check(node, against: element, path: path, name: name, lines: &lines)
            }
        case let .list(element):
            guard let items = node.sequence else {
                throw NodeError.configuration("config file \(name), line \(node.mark?.line ?? 0): '\(path)' must be a list")
            }
            try checkItems(items, against: element, path: path, name: name, lines: &lines)
        case let .object(keys):
            guard let mapping = node.mapping else {
                throw NodeError.configuration("config file \(name), line \(node.mark?.line ?? 0): '\(path)' must be a mapping of keys")
            }
            for (key, value) in mapping {
                let k = key.string ?? "?"
                let here = path.isEmpty ? k : "\(path).\(k)"
                guard let sub = keys[k] else {
                    throw NodeError.configuration("config file \(name), line \(key.mark?.line ?? 0): unknown key '\(here)' (known\(path.isEmpty ? "" : " in \(path)"): \(keys.keys.sorted().joined(separator: ", ")))")
                }
                lines[here] = key.mark?.line
                try check(value, against: sub, path: here, name: name, lines: &lines)
            }
        }
    }

    static func checkItems(_ items: Yams.Node.Sequence, against element: Schema, path: String, name: String, lines: inout [String: Int]) throws {
        for (i, item) in items.enumerated() {
            lines["\(path)[\(i)]"] = item.mark?.line
            try check(item, against: element, path: "\(path)[\(i)]", name: name, lines: &lines)
        }
    }

    static func locate(_ path: [any CodingKey], in node: Yams.Node) -> Int? {
        var current = node
        for key in path {
            if let i = key.intValue, let items = current.sequence, items.indices.contains(i) {
                current = items[i]
            } else if let value = current.mapping?[key.stringValue] {
                current = value
            } else {
                break
            }
        }
        return current.mark?.line
    }

    static func dotted(_ path: [any CodingKey]) -> String {
        path.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().trimmingCharacters(in: CharacterSet(charactersIn: "."))
    }

    static func describe(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type: "a whole number"
        case is Bool.Type: "true or false"
        case is String.Type: "text"
        default: "\(type)"
        }
    }
}

/// A config value given as one item or as a list of them (`mqtt:` for one broker or several).
public struct OneOrMany<Element: Decodable & Sendable & Equatable>: Decodable, Sendable, Equatable {
    public var items: [Element]
    /// Whether the file gave a list (errors then name `mqtt[1]`, else `mqtt`).
    public var isList: Bool

    public init(_ items: [Element], isList: Bool = true) {
        self.items = items
        self.isList = isList
    }

    public init(from decoder: any Decoder) throws {
        if var list = try? decoder.unkeyedContainer() {
            var items: [Element] = []
            while !list.isAtEnd { items.append(try list.decode(Element.self)) }
            self.init(items, isList: true)
        } else {
            self.init([try Element(from: decoder)], isList: false)
        }
    }
}
