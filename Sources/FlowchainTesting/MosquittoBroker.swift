import Foundation
import ProcessSupport
import Synchronization

/// A real mosquitto broker for a test: its own config and persistence directory, on a free
/// loopback port, stopped by its PID when released (or with `stop()`, e.g. to test an outage).
public final class MosquittoBroker: Sendable {
    public let dir: TemporaryDirectory
    public let port: Int
    let extraConfig: String
    let process: Mutex<ChildProcess?>

    /// The broker binary: $MOSQUITTO_BIN, else Debian's /usr/sbin/mosquitto.
    public static var binary: String { ProcessInfo.processInfo.environment["MOSQUITTO_BIN"] ?? "/usr/sbin/mosquitto" }
    public static var isInstalled: Bool { FileManager.default.isExecutableFile(atPath: binary) }

    /// Starts a broker (as the current user: run as root, mosquitto would otherwise switch to a
    /// `mosquitto` user that cannot read the test's files). `config` lines are added to the generated configuration (listeners with
    /// TLS, password files …); `listener` is the default anonymous-allowed listener's own lines.
    public init(config: String = "", listener: String = "allow_anonymous true") async throws {
        dir = TemporaryDirectory("mosquitto")
        process = Mutex(nil)
        // A free port can be taken by another process between the check and the broker's bind
        // (tests start brokers and nodes in parallel): then another port is tried.
        var attempt = 0
        while true {
            attempt += 1
            let port = try Self.freePort()
            let conf = Self.configuration(port: port, dir: dir, listener: listener, extra: config)
            do {
                let child = try await Self.launch(conf, dir: dir)
                self.port = port
                extraConfig = conf
                process.withLock { $0 = child }
                return
            } catch let BrokerError.didNotStart(log) where log.contains("Address already in use") && attempt < 5 {
                continue
            }
        }
    }

    static func configuration(port: Int, dir: TemporaryDirectory, listener: String, extra: String) -> String {
        """
        per_listener_settings true
        user \(NSUserName())
        persistence true
        persistence_location \(dir.path)/
        autosave_interval 1
        log_dest stdout
        log_type error
        log_type warning
        log_type notice
        listener \(port) 127.0.0.1
        \(listener)
        \(extra)
        """
    }

    static func launch(_ configuration: String, dir: TemporaryDirectory) async throws -> ChildProcess {
        let conf = dir.file("mosquitto.conf")
        try configuration.write(toFile: conf, atomically: true, encoding: .utf8)
        let child = try ChildProcess(executable: Self.binary, ["-c", conf], outputPath: dir.file("broker.log"))
        // Generous: in a full test run the cooperative pool can be busy for many seconds.
        guard try await child.waitForListeningPort(timeout: .seconds(90)) != nil else {
            throw BrokerError.didNotStart(child.output)
        }
        return child
    }

    /// (Re)starts the broker on the same port with the same persistence.
    public func start() async throws {
        let child = try await Self.launch(extraConfig, dir: dir)
        process.withLock { $0 = child }
    }

    /// Stops the broker (SIGTERM: it saves its persistence file first) and waits for it to exit.
    public func stop() async throws {
        guard let child = process.withLock({ p -> ChildProcess? in defer { p = nil }; return p }) else { return }
        try await child.stop(timeout: .seconds(15))
    }

    public var log: String { process.withLock { $0?.output } ?? ((try? String(contentsOfFile: dir.file("broker.log"), encoding: .utf8)) ?? "") }

    static func freePort() throws -> Int {
        let port = LoopbackHTTP.freePort()
        guard port > 0 else { throw BrokerError.noPort }
        return port
    }

    public enum BrokerError: Error, CustomStringConvertible {
        case didNotStart(String)
        case noPort
        public var description: String {
            switch self {
            case let .didNotStart(log): "mosquitto did not start:\n\(log.suffix(2000))"
            case .noPort: "no free loopback port"
            }
        }
    }
}
