/// One message received from the broker, copied out of libmosquitto's buffers.
public struct MQTTMessage: Sendable, Equatable {
    public let topic: String
    public let payload: [UInt8]
    public let qos: Int32
    public let retain: Bool

    public init(topic: String, payload: [UInt8], qos: Int32, retain: Bool) {
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
    }
}

/// What the client's network thread reports, in order.
public enum MQTTEvent: Sendable, Equatable {
    /// CONNACK accepted; `sessionPresent` when the broker kept our persistent session.
    case connected(sessionPresent: Bool)
    /// The broker refused the connection (bad credentials, …); the client keeps retrying.
    case refused(MQTTError)
    /// The connection ended; nil when we asked for it. The client reconnects by itself otherwise.
    case disconnected(MQTTError?)
    /// libmosquitto reported an error on the network thread (e.g. a TLS certificate the CA did not
    /// sign); the connection is retried.
    case failed(MQTTError)
    case message(MQTTMessage)
    /// The broker acknowledged our publish `mid` (PUBACK for QoS 1, PUBCOMP for QoS 2; sent for QoS 0).
    case published(mid: Int32)
    /// The broker answered a subscription with the QoS it granted per filter (128: refused).
    case subscribed(mid: Int32, granted: [Int32])
}
