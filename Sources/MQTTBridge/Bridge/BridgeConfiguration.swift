import Foundation

/// What the bridge does: which broker, and the rules that turn its messages into readings.
public struct BridgeConfiguration: Sendable, Equatable {
    public var broker: MQTTConfiguration
    /// The broker's name in logs and in the outbox's saved position; default `host:port`.
    public var name: String
    public var rules: [BridgeRule]
    /// Largest payload accepted (bytes); larger messages are counted as `too_large`.
    public var maxPayload = 16 * 1024
    /// Messages being ingested at once (in arrival order); more wait, and libmosquitto's buffers
    /// hold them.
    public var inFlight = 512
    /// Publish the ledger's readings and blocks back to the broker (nil: don't).
    public var outbound: OutboundConfiguration? = nil
    /// Republish what cannot become a reading, with its payload unchanged, to
    /// `<deadLetter>/<reason>/<original topic>` at QoS 1 (nil: don't). Repeats (`duplicate`) are
    /// not republished: they are already in the ledger.
    public var deadLetter: String? = nil

    public init(broker: MQTTConfiguration, rules: [BridgeRule]) {
        self.broker = broker
        self.rules = rules
        name = "\(broker.host):\(broker.port)"
    }

    /// Topics the bridge itself publishes under; messages on them are never taken for readings
    /// (a rule like `#` would otherwise feed the bridge its own output).
    public var ownPrefixes: [String] { [outbound?.prefix, deadLetter].compactMap { $0 } }

    /// A broker URL: `mqtt://[user[:password]@]host[:port]` (1883) or `mqtts://…` (8883, TLS
    /// verified against the system's CA file unless one is configured).
    public static func broker(url text: String, clientID: String) throws(BridgeConfigurationError) -> MQTTConfiguration {
        guard let url = URLComponents(string: text), let scheme = url.scheme?.lowercased(), scheme == "mqtt" || scheme == "mqtts",
              let host = url.host, !host.isEmpty else {
            throw .invalid("'\(text)' is not a broker URL: use mqtt://host[:port] or mqtts://host[:port] (user:password@ optional)")
        }
        if !url.path.isEmpty && url.path != "/" { throw .invalid("'\(text)': a broker URL has no path (topics are given with --subscribe)") }
        var config = MQTTConfiguration(host: host, port: url.port ?? (scheme == "mqtts" ? 8883 : 1883), clientID: clientID)
        config.username = url.user?.removingPercentEncoding ?? url.user
        config.password = url.password?.removingPercentEncoding ?? url.password
        if scheme == "mqtts" { config.tls = .init(caFile: "/etc/ssl/certs/ca-certificates.crt") }
        return config
    }
}

public enum BridgeConfigurationError: Error, Equatable, CustomStringConvertible {
    case invalid(String)
    public var description: String { switch self { case let .invalid(why): why } }
}
