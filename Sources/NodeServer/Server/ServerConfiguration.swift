/// How the node's HTTP/WebSocket server listens and what it allows.
public struct ServerConfiguration: Sendable, Equatable {
    public var host = "127.0.0.1"
    public var port = 8000
    /// When set, writes (device `send`, RPC `submit`) need it: `?token=…` or `Authorization: Bearer …`.
    public var token: String? = nil
    /// When true, reads need the token too.
    public var protectReads = false
    /// Largest WebSocket message accepted, in bytes; bigger ones close the connection (1009).
    public var maxFrameBytes = 64 * 1024
    /// Most connections served at once; more are answered 503 with a reason and closed.
    public var maxConnections = 1024
    /// Seconds a new connection has to complete its request head; then it is closed (408).
    public var headerTimeout = 10
    /// Seconds an HTTP keep-alive connection may stay idle between requests.
    public var idleTimeout = 60
    /// Messages per second allowed on one WebSocket (token bucket, burst of twice that); 0 = no limit.
    public var rateLimit = 2000
    /// Events buffered per viewer or subscriber before drops start.
    public var subscriberBuffer = 1024
    /// Requests processed concurrently on one RPC connection.
    public var rpcConcurrency = 64
    /// Seconds between WebSocket pings; a peer that misses one is disconnected. 0 disables pings.
    public var pingInterval = 30
    /// TLS: a PEM certificate (chain) and its private key; the server then speaks https and wss only.
    public var tlsCertificate: String? = nil
    public var tlsKey: String? = nil

    public init() {}
}
