/// How the bridge connects to one broker. Defaults suit a broker on this machine.
public struct MQTTConfiguration: Sendable, Equatable {
    public enum ProtocolVersion: String, Sendable, Equatable {
        case v311 = "3.1.1"
        case v5 = "5"
    }

    /// TLS towards the broker: the CA that signed its certificate, and optionally a client
    /// certificate and key. The broker's certificate is verified unless `insecure` says otherwise.
    public struct TLS: Sendable, Equatable {
        public var caFile: String
        public var certificateFile: String?
        public var keyFile: String?
        /// Skip checking that the certificate names the host (never the chain). For tests only.
        public var insecure = false
        public init(caFile: String, certificateFile: String? = nil, keyFile: String? = nil) {
            self.caFile = caFile
            self.certificateFile = certificateFile
            self.keyFile = keyFile
        }
    }

    /// A message the broker publishes for us if we vanish without disconnecting.
    public struct Will: Sendable, Equatable {
        public var topic: String
        public var payload: [UInt8]
        public var qos: Int32
        public var retain: Bool
        public init(topic: String, payload: [UInt8], qos: Int32 = 1, retain: Bool = true) {
            self.topic = topic
            self.payload = payload
            self.qos = qos
            self.retain = retain
        }
    }

    public var host: String
    public var port: Int = 1883
    public var clientID: String
    public var username: String? = nil
    public var password: String? = nil
    public var tls: TLS? = nil
    public var protocolVersion: ProtocolVersion = .v311
    /// Seconds between keepalive pings.
    public var keepalive: Int32 = 30
    /// false keeps a persistent session: the broker holds QoS 1/2 messages while we are away.
    public var cleanSession = false
    /// MQTT 5 only: how long the broker keeps a persistent session after we disconnect.
    public var sessionExpirySeconds: UInt32 = 7 * 24 * 3600
    public var will: Will? = nil
    /// Reconnect backoff: from `min` doubling up to `max` seconds.
    public var reconnectDelay: (min: UInt32, max: UInt32) = (1, 30)

    public init(host: String, port: Int = 1883, clientID: String) {
        self.host = host
        self.port = port
        self.clientID = clientID
    }

    public static func == (a: MQTTConfiguration, b: MQTTConfiguration) -> Bool {
        a.host == b.host && a.port == b.port && a.clientID == b.clientID && a.username == b.username && a.password == b.password
            && a.tls == b.tls && a.protocolVersion == b.protocolVersion && a.keepalive == b.keepalive && a.cleanSession == b.cleanSession
            && a.sessionExpirySeconds == b.sessionExpirySeconds && a.will == b.will && a.reconnectDelay == b.reconnectDelay
    }
}
