import Consensus
import Ledger
import MQTTBridge
import Sensors
import NodeServer
import PeerNetwork

/// Everything `flowchain node` can be told; defaults are the embedded ones a newcomer runs with.
public struct NodeConfiguration: Sendable {
    public var dataDirectory = DataDirectory(DataDirectory.defaultPath)
    /// A segment block is cut this often when readings are pending.
    public var blockInterval: Duration = .seconds(1)
    public var ingest = IngestEngine.Configuration()
    /// Blocks re-verified on start.
    public var tailCheck = LedgerStore.defaultTailCheck
    public var demo: DemoConfiguration? = nil
    /// The anchor chain's genesis file; nil uses `<data-dir>/genesis.json`, creating a single-node
    /// genesis there on first run.
    public var genesisPath: String? = nil
    /// Anchor interval (seconds) of a single-node genesis created on first run.
    public var anchorInterval: UInt32 = 10
    /// Whether this node mints anchor blocks.
    public var mint = true
    /// The HTTP/WebSocket server; nil runs the node without one.
    public var server: ServerConfiguration? = ServerConfiguration()
    /// The MQTT bridges, one per broker (none: the node bridges nothing). An empty client id
    /// becomes `flowchain-<first 12 hex digits of the node key>`; `{node}` in the outbound and
    /// dead-letter prefixes, those digits.
    public var mqtt: [BridgeConfiguration] = []
    /// The node's own sensors (none: it reads none).
    public var sensors: [SensorConfiguration] = []
    /// The peer network (`ws /peer`, the Chord ring, routing); nil runs the node on its own.
    /// Needs the server.
    public var peers: PeerNode.Configuration? = PeerNode.Configuration()
    /// What the ledger keeps (empty: everything, forever).
    public var retention = RetentionPolicy()
    /// How often retention is applied.
    public var retentionInterval: Duration = .seconds(60)
    /// Where every part of the node reads the time (tests inject their own).
    public var clock: WallClock = .system

    public init() {}
}

/// The synthetic feed of `--demo`: devices `demo-0`… each sending a reading `rate` times a second.
public struct DemoConfiguration: Sendable {
    public var devices = 4
    public var rate = 4.0
    /// When set, the id of every acknowledged demo reading is appended here (one hex id a line),
    /// after its acknowledgement: the crash test checks that each is still stored after SIGKILL.
    public var ackLogPath: String? = nil

    public init() {}
}
