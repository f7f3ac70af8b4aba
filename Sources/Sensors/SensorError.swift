import Foundation

/// Why a sensor could not be read: what was being done, and what the system said. `kind` is the
/// `/metrics` label (`flowchain_errors_total{kind="sensor_<kind>"}`).
public struct SensorError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, CaseIterable {
        /// A configured chip, line, IIO device or 1-Wire device that does not exist (now).
        case missing
        /// A GPIO line that another program holds.
        case busy
        /// No permission on the device file.
        case permission
        /// The sensor answered, but not with a reading (a bad CRC, text that is not a number).
        case garbage
        /// Reading failed (EIO and the like).
        case io
        /// The configuration asks for something this sensor cannot do.
        case configuration
    }

    public let kind: Kind
    public let message: String
    /// errno, when the system gave one.
    public let code: Int32

    public init(_ kind: Kind, _ message: String, code: Int32 = 0) {
        self.kind = kind
        self.message = message
        self.code = code
    }

    public var description: String { message }

    /// The kind an errno stands for.
    static func kind(errno code: Int32) -> Kind {
        switch code {
        case ENOENT, ENODEV, ENXIO: .missing
        case EBUSY: .busy
        case EACCES, EPERM: .permission
        case EINVAL: .configuration
        default: .io
        }
    }

    static func errnoText(_ code: Int32) -> String { String(cString: strerror(code)) }
}
