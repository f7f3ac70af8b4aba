import Foundation

/// The node's key on disk: one line `ed25519-seed:<64 hex digits>` in a file of mode 0600.
///
/// A raw seed rather than PEM keeps the file readable and trivially portable to the C agent; the
/// public key (and so the node id) is derived from it.
public enum KeyFile {
    public static let defaultName = "node.key"
    static let prefix = "ed25519-seed:"

    /// Creates a new key at `path`; refuses when a file is already there.
    @discardableResult
    public static func create(at path: String) throws -> PrivateKey {
        let key = try PrivateKey()
        let text = prefix + Hex.encode(key.seed) + "\n"
        // O_EXCL makes "refuse to overwrite" race-free; mode 0600 is set at creation, not after.
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if fd < 0 {
            let err = errno
            if err == EEXIST { throw KeyError.keyFileExists(path: path) }
            throw KeyError.io(path: path, operation: "create", errno: err, message: String(cString: strerror(err)))
        }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count, fsync(fd) == 0 else {
            let err = errno
            unlink(path)
            throw KeyError.io(path: path, operation: "write", errno: err, message: String(cString: strerror(err)))
        }
        return key
    }

    /// Loads the key at `path`, refusing files that group or others can read.
    public static func load(from path: String) throws -> PrivateKey {
        var info = stat()
        guard stat(path, &info) == 0 else {
            let err = errno
            if err == ENOENT { throw KeyError.keyFileMissing(path: path) }
            throw KeyError.io(path: path, operation: "stat", errno: err, message: String(cString: strerror(err)))
        }
        let mode = UInt16(info.st_mode & 0o777)
        if mode & 0o077 != 0 { throw KeyError.insecurePermissions(path: path, mode: mode) }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw KeyError.io(path: path, operation: "read", errno: EIO, message: "cannot read file")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw KeyError.malformedKeyFile(path: path, reason: "not UTF-8 text")
        }
        let line = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard line.hasPrefix(prefix) else {
            throw KeyError.malformedKeyFile(path: path, reason: "expected a line starting with '\(prefix)'")
        }
        guard let seed = Hex.decode(String(line.dropFirst(prefix.count))) else {
            throw KeyError.malformedKeyFile(path: path, reason: "the seed is not hexadecimal")
        }
        guard seed.count == Ed25519.seedLength else {
            throw KeyError.malformedKeyFile(path: path, reason: "the seed is \(seed.count) bytes, expected \(Ed25519.seedLength)")
        }
        return try PrivateKey(seed: seed)
    }

    /// Loads the key at `path`, creating it first when there is none.
    public static func loadOrCreate(at path: String) throws -> (key: PrivateKey, created: Bool) {
        do {
            return (try load(from: path), false)
        } catch KeyError.keyFileMissing {
            return (try create(at: path), true)
        }
    }
}
