internal import COpenSSL

/// A failure inside libcrypto, carrying the operation that failed and OpenSSL's own message.
public struct OpenSSLError: Error, CustomStringConvertible, Sendable {
    /// The libcrypto function that failed, e.g. `EVP_DigestSign`.
    public let operation: String
    /// The packed error code from `ERR_get_error` (0 when OpenSSL queued none).
    public let code: UInt
    /// OpenSSL's text for `code` (`ERR_error_string_n`), or a description from us when it queued none.
    public let message: String

    public var description: String { "\(operation) failed: \(message)" }

    /// Drains OpenSSL's per-thread error queue into one error for `operation`.
    static func drain(_ operation: String, fallback: String = "no error queued") -> OpenSSLError {
        let first = ERR_get_error()
        var code = first
        var messages: [String] = []
        while code != 0 {
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            messages.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
            code = ERR_get_error()
        }
        return OpenSSLError(
            operation: operation,
            code: UInt(first),
            message: messages.isEmpty ? fallback : messages.joined(separator: "; ")
        )
    }
}

/// Problems with key material or key files, as opposed to libcrypto failures.
public enum KeyError: Error, CustomStringConvertible, Sendable, Equatable {
    case wrongLength(what: String, expected: Int, got: Int)
    case malformedKeyFile(path: String, reason: String)
    case keyFileExists(path: String)
    case keyFileMissing(path: String)
    case insecurePermissions(path: String, mode: UInt16)
    case io(path: String, operation: String, errno: Int32, message: String)
    /// The crypto library could not do what was asked (it says why).
    case unavailable(String)

    public var description: String {
        switch self {
        case let .wrongLength(what, expected, got):
            return "\(what) must be \(expected) bytes, got \(got)"
        case let .malformedKeyFile(path, reason):
            return "key file \(path) is malformed: \(reason)"
        case let .keyFileExists(path):
            return "a key already exists at \(path); refusing to overwrite it (move it away first if you really mean to replace the node's identity)"
        case let .keyFileMissing(path):
            return "no key at \(path); create one with `flowchain keygen`"
        case let .insecurePermissions(path, mode):
            return "key file \(path) has mode \(String(mode, radix: 8)); it must not be readable by group or others (chmod 600 \(path))"
        case let .io(path, operation, _, message):
            return "\(operation) \(path): \(message)"
        case let .unavailable(why):
            return why
        }
    }
}
