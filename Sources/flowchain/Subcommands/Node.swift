import ArgumentParser
import FlowchainNode
import MQTTBridge
import NodeServer
import Foundation
import Logging
import FlowchainClient
import FlowchainWire
import Ledger
import PeerNetwork
import Sensors

struct NodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node",
        abstract: "Run a Flowchain node on a data directory.",
        discussion: """
            Creates the data directory and node key on first run, re-verifies the newest blocks of \
            the ledger (and refuses to start on a damaged one), then commits readings into signed, \
            hash-linked segment blocks, one every --block-interval while readings are pending. \
            Logs a line per block. SIGTERM or SIGINT (Ctrl-C) stops the feeds, seals the pending \
            readings into a last block and exits 0.

            With --demo the node feeds itself synthetic readings from devices demo-0…demo-3.

            Every node serves ws /peer: alone it is a ring of one; with --join host:port it joins             that node's ring (adopting its genesis on first start), stores the readings of the             devices it owns, forwards the rest to their owners, keeps copies of its successors'             chains and shares one anchor chain (docs/ring.md).
            """
    )

    @Option(name: .long, help: ArgumentHelp("The node's data directory (key and ledger). Default ./flowchain-data.", valueName: "dir"))
    var dataDir: String?

    @Option(help: ArgumentHelp("A YAML (or JSON) config file; see docs/configuration.md. Flags > environment > file > defaults.", valueName: "file"))
    var config: String?

    @Option(help: ArgumentHelp("Address to listen on (env HOST). Default 127.0.0.1; 0.0.0.0 for every interface.", valueName: "host"))
    var host: String?

    @Option(help: ArgumentHelp("Port for HTTP and WebSocket (env PORT). Default 8000; 0 picks a free one.", valueName: "port"))
    var port: Int?

    @Option(help: ArgumentHelp("Token required for writes (env FLOWCHAIN_TOKEN): ?token=… or Authorization: Bearer.", valueName: "token"))
    var token: String?

    @Flag(help: "Require the token for reads too.")
    var protectReads = false

    @Flag(help: "Run without the HTTP/WebSocket server.")
    var noServer = false

    @Option(help: ArgumentHelp("The anchor chain's genesis file (flowchain genesis). Default: <data-dir>/genesis.json, created on first run as a single-node genesis.", valueName: "file"))
    var genesis: String?

    @Option(help: ArgumentHelp("Anchor interval in seconds for a single-node genesis created on first run.", valueName: "s"))
    var anchorInterval: UInt32 = 10

    @Flag(help: "Do not mint anchor blocks.")
    var noMint = false

    @Option(help: ArgumentHelp("Largest WebSocket message, bytes. Default 65536.", valueName: "bytes"))
    var maxFrame: Int?

    @Option(help: ArgumentHelp("Most connections served at once; more are answered 503 and closed. Default 1024.", valueName: "n"))
    var maxConnections: Int?

    @Option(help: ArgumentHelp("Messages per second per WebSocket (0: no limit). Default 2000.", valueName: "n"))
    var rateLimit: Int?

    @Option(help: ArgumentHelp("Seconds between WebSocket pings; a client that misses one is dropped (0: no pings). Default 30.", valueName: "s"))
    var pingInterval: Int?

    @Option(help: ArgumentHelp("Seconds a new connection has to send its request head before it is closed (408). Default 10.", valueName: "s"))
    var headerTimeout: Int?

    @Option(help: ArgumentHelp("Seconds an HTTP keep-alive connection may sit idle between requests. Default 60.", valueName: "s"))
    var idleTimeout: Int?

    @Flag(help: "Feed synthetic readings from devices demo-0…demo-3.")
    var demo = false

    @Option(help: ArgumentHelp("Readings per second per demo device.", valueName: "n"))
    var demoRate = 4.0

    @Option(help: ArgumentHelp("Number of demo devices.", valueName: "n"))
    var demoDevices = 4

    @Option(help: ArgumentHelp("Append the id of every acknowledged demo reading to this file (used by the crash test).", valueName: "file"))
    var demoAckLog: String?

    @Option(help: ArgumentHelp("The board the node runs on (raspberry-pi-3, raspberry-pi-4, raspberry-pi-5, raspberry-pi-zero-2-w, linkit-smart-7688): sensors may then name header pins ('pin: 11') or GPIOs ('line: GPIO17') without a chip. See flowchain boards.", valueName: "board"))
    var board: String?

    @Option(help: ArgumentHelp("Whether the time stamps this node takes are synchronised (timeSynced): 'kernel' asks the kernel (adjtimex: synchronised by NTP, chrony or timesyncd; the default), 'trusted' always, 'untrusted' never.", valueName: "mode"))
    var clockSync: String?

    @Option(help: ArgumentHelp("Milliseconds a commit waits after a reading arrives for others to share its transaction (fewer fsyncs and bytes written on SD cards; acknowledgements wait at most this long more). 0 commits at once. Default 0.", valueName: "ms"))
    var commitWindow: Int?

    @Option(help: ArgumentHelp("Retention by age: readings sealed in blocks older than this (30d, 12h, 90m) lose their payloads; ids and block headers stay, so the chain still verifies. Default: keep everything.", valueName: "age"))
    var retainAge: String?

    @Option(help: ArgumentHelp("Retention by size: the oldest blocks' payloads are pruned until the ledger file is at most this large (2GB, 500MB, 1GiB). Default: no limit.", valueName: "size"))
    var retainSize: String?

    @Option(help: ArgumentHelp("Milliseconds between segment blocks. Default 1000.", valueName: "ms"))
    var blockInterval: Int?

    @Option(help: ArgumentHelp("Most readings in one block; a full block is cut at once. Default 4096.", valueName: "n"))
    var maxBlockReadings: Int?

    @Option(help: ArgumentHelp("Largest accepted payload, in bytes. Default 16384.", valueName: "bytes"))
    var maxPayload: Int?

    @Option(help: ArgumentHelp("Newest blocks re-verified on start (fewer when they hold over 8,192 readings; always the newest).", valueName: "n"))
    var tailCheck = 32

    @Option(help: ArgumentHelp("trace, debug, info, notice, warning, error or critical. Default info.", valueName: "level"))
    var logLevel: String?

    @Option(help: ArgumentHelp("Bridge this MQTT broker: mqtt://[user:password@]host[:port] or mqtts://… (env FLOWCHAIN_MQTT).", valueName: "url"))
    var mqtt: String?

    @Option(help: ArgumentHelp("With --mqtt: a topic filter whose messages become readings (repeat for more). The device id is the filter's first + level, else the topic's last level; payloads are a JSON object, key=value pairs or a bare value (stored as {\"value\": …}).", valueName: "filter"))
    var subscribe: [String] = []

    @Option(help: ArgumentHelp("With --mqtt: the CA file that signed the broker's certificate (mqtts://). Default: the system's.", valueName: "file"))
    var mqttCA: String?

    @Flag(help: ArgumentHelp("With --mqtt: publish the node's readings (<prefix>/readings/<device>) and blocks (<prefix>/blocks) to the broker, and a retained <prefix>/status (online/offline)."))
    var mqttPublish = false

    @Option(help: ArgumentHelp("With --mqtt-publish: the topic prefix. Default flowchain/{node} ({node}: the node key's first 12 hex digits).", valueName: "prefix"))
    var mqttPrefix: String?

    @Option(help: ArgumentHelp("With --mqtt: the MQTT client id (a persistent session is kept under it). Default flowchain-<node key prefix>.", valueName: "id"))
    var mqttClientID: String?

    @Option(help: ArgumentHelp("With --mqtt: republish messages that cannot become readings, unchanged, to <prefix>/<reason>/<original topic> ({node} allowed). Several brokers: see docs/configuration.md.", valueName: "prefix"))
    var mqttDeadLetter: String?

    @Option(help: ArgumentHelp("Join the ring this peer belongs to: host:port of its server (repeat for more; env PEER_ADDR and PEER_PORT). Without it the node starts a ring of its own that others can join. A node without a genesis adopts the peer's.", valueName: "host:port"))
    var join: [String] = []

    @Option(help: ArgumentHelp("host:port other nodes reach this one at. Default: --host and the listening port (set it when listening on 0.0.0.0).", valueName: "host:port"))
    var advertise: String?

    @Flag(help: "Run without the peer network: no /peer endpoint, no ring; the node stores every reading itself.")
    var noPeers = false

    @Option(help: ArgumentHelp("Serve https and wss only, with this PEM certificate (chain); needs --tls-key.", valueName: "file"))
    var tlsCert: String?

    @Option(help: ArgumentHelp("The PEM private key of --tls-cert.", valueName: "file"))
    var tlsKey: String?

    @Flag(help: "Dial peers with wss:// (every node of the ring serves TLS: give --tls-cert and --tls-key).")
    var peerTLS = false

    @Option(help: ArgumentHelp("With --peer-tls: check peers' certificates against this CA. Without it the link is encrypted and a peer is still authenticated by its Ed25519 key.", valueName: "file"))
    var peerCA: String?

    @Option(help: ArgumentHelp("Copies of each reading in the ring: its owner's and r − 1 on the owner's next successors. Default 3; 1 keeps no copies.", valueName: "r"))
    var replicas: Int?

    @Option(help: ArgumentHelp("When a reading is acknowledged: 'owner' (after the owner's durable commit, the default) or 'replica' (after a replica's too).", valueName: "level"))
    var ack: String?

    func validate() throws {
        guard demoRate > 0, demoRate <= 10_000 else { throw ValidationError("--demo-rate must be in (0, 10000]") }
        guard (1...64).contains(demoDevices) else { throw ValidationError("--demo-devices must be 1…64") }
        guard tailCheck >= 0 else { throw ValidationError("--tail-check must be 0 or more") }
    }

    /// The retention policy from `--retain-age`/`retention.maxAge` and `--retain-size`/`retention.maxSize`.
    /// `invalid` makes the error for a bad value: which setting (`age`/`size`) and why.
    static func retention(age: String?, size: String?,
                          invalid: (_ setting: String, _ why: String) -> any Error = { setting, why in ValidationError("retention \(setting) \(why)") }) throws -> RetentionPolicy {
        var policy = RetentionPolicy()
        if let age {
            guard let ms = RetentionPolicy.parseAge(age) else { throw invalid("age", "'\(age)' is not an age: a number with s, m, h, d or w (30d, 12h)") }
            guard ms >= 60_000 else { throw invalid("age", "'\(age)' is under a minute") }
            policy.maxAge = ms
        }
        if let size {
            guard let bytes = RetentionPolicy.parseSize(size) else { throw invalid("size", "'\(size)' is not a size: a number with KB, MB, GB (or KiB, MiB, GiB)") }
            guard bytes >= 1_000_000 else { throw invalid("size", "'\(size)' is under 1 MB") }
            policy.maxBytes = bytes
        }
        return policy
    }

    /// Flags > environment > config file > defaults, checked.
    func resolve() throws -> (NodeConfiguration, Logger.Level) {
        let file = try config.map(ConfigFile.load) ?? ConfigFile()
        let env = ProcessInfo.processInfo.environment
        /// A bad value, named by its flag, or by the file's key and line when the file gave it
        /// (`given`: the flag was on the command line).
        func invalid(_ flag: String, _ key: String, given: Bool, _ why: String) -> any Error {
            if !given, let place = file.place(of: key) { return NodeError.configuration("\(place) \(why)") }
            return ValidationError("\(flag) \(why)")
        }
        var c = NodeConfiguration()
        c.dataDirectory = DataDirectory(dataDir ?? file.dataDir ?? DataDirectory.defaultPath)
        let interval = blockInterval ?? file.blockInterval ?? 1000
        guard interval >= 10 else { throw invalid("--block-interval", "blockInterval", given: blockInterval != nil, "must be at least 10 ms") }
        c.blockInterval = .milliseconds(interval)
        c.ingest.maxBlockReadings = maxBlockReadings ?? file.maxBlockReadings ?? 4096
        guard c.ingest.maxBlockReadings >= 1 else { throw invalid("--max-block-readings", "maxBlockReadings", given: maxBlockReadings != nil, "must be at least 1") }
        let window = commitWindow ?? file.commitWindow ?? 0
        guard (0...50).contains(window) else { throw invalid("--commit-window", "commitWindow", given: commitWindow != nil, "must be 0…50 ms") }
        c.ingest.commitWindow = .milliseconds(window)
        let sync = clockSync ?? file.clockSync ?? "kernel"
        guard let mode = ClockSync.Mode(rawValue: sync) else {
            throw invalid("--clock-sync", "clockSync", given: clockSync != nil, "must be \(ClockSync.Mode.allCases.map(\.rawValue).joined(separator: ", ")), not '\(sync)'")
        }
        c.ingest.clock = ClockSync(mode: mode)
        c.retention = try Self.retention(age: retainAge ?? file.retention?.maxAge, size: retainSize ?? file.retention?.maxSize) { setting, why in
            setting == "age" ? invalid("--retain-age", "retention.maxAge", given: retainAge != nil, why)
                             : invalid("--retain-size", "retention.maxSize", given: retainSize != nil, why)
        }
        c.ingest.maxPayloadBytes = maxPayload ?? file.maxPayload ?? 16 * 1024
        guard c.ingest.maxPayloadBytes >= 2 else { throw invalid("--max-payload", "maxPayload", given: maxPayload != nil, "must be at least 2 bytes") }
        c.tailCheck = tailCheck
        c.genesisPath = genesis
        guard anchorInterval >= 1 else { throw ValidationError("--anchor-interval must be at least 1 second") }
        c.anchorInterval = anchorInterval
        c.mint = !noMint
        if noServer {
            c.server = nil
        } else {
            var s = ServerConfiguration()
            s.host = host ?? env["HOST"] ?? file.host ?? s.host
            if let p = port {
                s.port = p
            } else if let text = env["PORT"] {
                guard let p = Int(text) else { throw ValidationError("environment PORT='\(text)' is not a port number") }
                s.port = p
            } else if let p = file.port {
                s.port = p
            }
            guard (0...65535).contains(s.port) else {
                throw invalid("--port", "port", given: port != nil || env["PORT"] != nil, "\(s.port) is outside 0…65535")
            }
            s.token = token ?? env["FLOWCHAIN_TOKEN"] ?? file.token
            if s.token?.isEmpty == true { s.token = nil }
            s.protectReads = protectReads || (file.protectReads ?? false)
            if s.protectReads, s.token == nil {
                throw invalid("--protect-reads", "protectReads", given: protectReads, "needs a token (--token, FLOWCHAIN_TOKEN or token:)")
            }
            s.maxFrameBytes = maxFrame ?? file.maxFrameBytes ?? s.maxFrameBytes
            guard s.maxFrameBytes >= 1024 else { throw invalid("--max-frame", "maxFrameBytes", given: maxFrame != nil, "must be at least 1024 bytes") }
            s.maxConnections = maxConnections ?? file.maxConnections ?? s.maxConnections
            guard s.maxConnections >= 1 else { throw invalid("--max-connections", "maxConnections", given: maxConnections != nil, "must be at least 1") }
            s.rateLimit = rateLimit ?? file.rateLimit ?? s.rateLimit
            guard s.rateLimit >= 0 else { throw invalid("--rate-limit", "rateLimit", given: rateLimit != nil, "must be 0 (no limit) or more") }
            s.pingInterval = pingInterval ?? file.pingInterval ?? s.pingInterval
            guard s.pingInterval >= 0 else { throw invalid("--ping-interval", "pingInterval", given: pingInterval != nil, "must be 0 (no pings) or more") }
            s.headerTimeout = headerTimeout ?? file.headerTimeout ?? s.headerTimeout
            guard s.headerTimeout >= 1 else { throw invalid("--header-timeout", "headerTimeout", given: headerTimeout != nil, "must be at least 1 second") }
            s.idleTimeout = idleTimeout ?? file.idleTimeout ?? s.idleTimeout
            guard s.idleTimeout >= 1 else { throw invalid("--idle-timeout", "idleTimeout", given: idleTimeout != nil, "must be at least 1 second") }
            s.tlsCertificate = tlsCert ?? file.tlsCertificate
            s.tlsKey = tlsKey ?? file.tlsKey
            guard (s.tlsCertificate == nil) == (s.tlsKey == nil) else {
                throw s.tlsCertificate == nil ? invalid("--tls-key", "tlsKey", given: tlsKey != nil, "needs a certificate too (--tls-cert or tlsCertificate:)")
                                              : invalid("--tls-cert", "tlsCertificate", given: tlsCert != nil, "needs a key too (--tls-key or tlsKey:)")
            }
            for (f, flag, key, given) in [(s.tlsCertificate, "--tls-cert", "tlsCertificate", tlsCert != nil), (s.tlsKey, "--tls-key", "tlsKey", tlsKey != nil)] {
                if let f, !FileManager.default.isReadableFile(atPath: f) { throw invalid(flag, key, given: given, "\(f): cannot read the file") }
            }
            c.server = s
        }
        if demo {
            var d = DemoConfiguration()
            d.rate = demoRate
            d.devices = demoDevices
            d.ackLogPath = demoAckLog
            c.demo = d
        }
        if let url = mqtt ?? env["FLOWCHAIN_MQTT"] {
            var broker = try BridgeConfiguration.broker(url: url, clientID: mqttClientID ?? "")
            if let ca = mqttCA {
                guard broker.tls != nil else { throw ValidationError("--mqtt-ca applies to mqtts:// brokers") }
                broker.tls?.caFile = ca
            }
            guard !subscribe.isEmpty else { throw ValidationError("--mqtt needs at least one --subscribe FILTER (e.g. 'sensors/+/temperature')") }
            var rules: [BridgeRule] = []
            for text in subscribe {
                guard let filter = TopicFilter(text) else { throw ValidationError("--subscribe '\(text)' is not an MQTT topic filter ('#' only last, '+' a whole level)") }
                rules.append(.simple(filter))
            }
            var bridge = BridgeConfiguration(broker: broker, rules: rules)
            bridge.maxPayload = c.ingest.maxPayloadBytes
            if mqttPublish || mqttPrefix != nil { bridge.outbound = try ConfigFile.MQTTSection.outbound(prefix: mqttPrefix, key: "--mqtt-prefix") }
            if let mqttDeadLetter { bridge.deadLetter = try ConfigFile.MQTTSection.topicPrefix(mqttDeadLetter, key: "--mqtt-dead-letter") }
            c.mqtt = [bridge]
        } else if !subscribe.isEmpty || mqttDeadLetter != nil {
            throw ValidationError("--subscribe and --mqtt-dead-letter need --mqtt URL (the broker)")
        } else if let sections = file.mqtt {
            let bridges: [BridgeConfiguration]
            do { bridges = try sections.bridgeConfigurations() } catch { throw file.locating(error) }
            c.mqtt = bridges.map { bridge in
                var bridge = bridge
                bridge.maxPayload = c.ingest.maxPayloadBytes
                return bridge
            }
        }
        let boardData: Board?
        do { boardData = try (board ?? file.board).map { id throws(BoardError) in try Board.named(id) } } catch {
            throw invalid("--board", "board", given: board != nil, "'\(board ?? file.board ?? "")' is not a board here: \(error)")
        }
        do { c.sensors = try file.sensors?.sensorConfigurations(board: boardData) ?? [] } catch { throw file.locating(error) }
        if noPeers || noServer {
            if replicas != nil || ack != nil || advertise != nil { throw ValidationError("--replicas, --ack and --advertise need the peer network (drop --no-peers / --no-server)") }
            if !join.isEmpty { throw ValidationError(noServer ? "--join needs the server (drop --no-server)" : "--join and --no-peers contradict each other") }
            c.peers = nil
        } else {
            var p = c.peers ?? .init()
            var joins = join
            if joins.isEmpty, let addr = env["PEER_ADDR"], !addr.isEmpty {
                let port = env["PEER_PORT"] ?? "8000"
                guard let n = Int(port), (1...65535).contains(n) else { throw ValidationError("environment PEER_PORT='\(port)' is not a port number") }
                joins = ["\(addr.contains(":") ? "[\(addr)]" : addr):\(n)"]
            }
            let joinsFromFile = joins.isEmpty
            if joins.isEmpty { joins = file.peers?.join ?? [] }
            for j in joins where !Self.isAddress(j) {
                throw invalid("--join", "peers.join", given: !joinsFromFile, "'\(j)' is not host:port (e.g. 192.168.1.20:8000)")
            }
            p.join = joins
            p.advertise = advertise ?? file.peers?.advertise
            if let a = p.advertise, !Self.isAddress(a) {
                throw invalid("--advertise", "peers.advertise", given: advertise != nil, "'\(a)' is not host:port (e.g. 192.168.1.20:8000)")
            }
            p.replicationFactor = replicas ?? file.peers?.replicas ?? p.replicationFactor
            guard (1...8).contains(p.replicationFactor) else { throw invalid("--replicas", "peers.replicas", given: replicas != nil, "must be 1…8, not \(p.replicationFactor)") }
            let level = ack ?? file.peers?.ack ?? p.ack.rawValue
            guard let parsed = PeerNode.AckLevel(rawValue: level) else { throw invalid("--ack", "peers.ack", given: ack != nil, "must be 'owner' or 'replica', not '\(level)'") }
            p.ack = parsed
            p.transport.tls = peerTLS || (file.peers?.tls ?? false)
            p.transport.caFile = peerCA ?? file.peers?.ca
            if p.transport.tls, c.server?.tlsCertificate == nil {
                throw invalid("--peer-tls", "peers.tls", given: peerTLS, "needs this node to serve TLS too (--tls-cert and --tls-key): a ring is all TLS or all plain")
            }
            if p.transport.caFile != nil, !p.transport.tls { throw invalid("--peer-ca", "peers.ca", given: peerCA != nil, "applies with --peer-tls (peers.tls: true)") }
            if let server = c.server, server.maxFrameBytes < 16384 {
                throw ValidationError("--max-frame must be at least 16384 bytes while the peer network is on (peers send frames of 16 KiB); or use --no-peers")
            }
            c.peers = p
        }
        let levelName = logLevel ?? file.logLevel ?? "info"
        guard let level = Logger.Level(rawValue: levelName) else {
            throw invalid("--log-level", "logLevel", given: logLevel != nil, "'\(levelName)' is not one of trace, debug, info, notice, warning, error, critical")
        }
        return (c, level)
    }

    /// host:port, with a port in 1…65535 (a bracketed IPv6 host allowed).
    static func isAddress(_ text: String) -> Bool {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port),
              colon > text.startIndex, !text.contains("/") else { return false }
        return true
    }

    func run() async throws {
        let (config, level): (NodeConfiguration, Logger.Level)
        do {
            (config, level) = try resolve()
        } catch let e as ValidationError {
            throw e
        } catch {
            throw failure("\(error)")
        }
        let journal = JournalLogHandler.stderrIsJournal
        LoggingSystem.bootstrap { label in
            if journal { return JournalLogHandler(label: label, logLevel: level) }
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "flowchain")
        let node: Node
        do {
            try await Node.adoptGenesisIfNeeded(config, logger: logger)
            node = try Node(configuration: config, logger: logger)
        } catch {
            throw failure("\(error)")
        }
        do {
            try await node.run()
        } catch {
            throw failure("\(error)")
        }
    }
}
