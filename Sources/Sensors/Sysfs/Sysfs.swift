import Foundation

/// Where sysfs is: `/sys`, or `$FLOWCHAIN_SYSFS` (a copy of the tree, e.g. test fixtures or a
/// container with the host's /sys mounted elsewhere).
public struct Sysfs: Sendable, Equatable {
    public var root: String

    public init(root: String = "/sys") { self.root = root }

    public static var current: Sysfs {
        Sysfs(root: ProcessInfo.processInfo.environment["FLOWCHAIN_SYSFS"] ?? "/sys")
    }

    public func path(_ relative: String) -> String { root + "/" + relative }

    /// The entries of a directory, sorted; [] when it does not exist.
    func list(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
    }

    /// A whole small file, or the precise reason it could not be read.
    func read(_ file: String, what: String) throws(SensorError) -> String {
        let fd = open(file, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let e = errno
            throw SensorError(SensorError.kind(errno: e), "\(what): cannot open \(file): \(SensorError.errnoText(e))", code: e)
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { Foundation.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                let e = errno
                if e == EINTR { continue }
                // A kernel driver that cannot talk to its sensor answers EIO (dht11 does often).
                throw SensorError(e == ENODEV || e == ENOENT ? .missing : .io, "\(what): reading \(file) failed: \(SensorError.errnoText(e))", code: e)
            }
            if n == 0 { break }
            bytes += buffer[0..<n]
            if bytes.count > 1 << 16 { throw SensorError(.garbage, "\(what): \(file) is larger than a sensor file should be") }
        }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw SensorError(.garbage, "\(what): \(file) is not text") }
        return text
    }
}
