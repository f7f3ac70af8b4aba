/// A JSON value as the node reads it (RPC messages, device frames, answers the client gets), typed
/// instead of `Any`. Numbers keep their literal text, so an integer keeps every digit and nothing
/// is rounded until someone asks for it as a particular type.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    /// A number exactly as written, e.g. `"-12"`, `"21.5"`, `"1e3"`.
    case number(String)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// Parses strict RFC 8259 JSON (see `StrictJSON`).
    public init(parsing bytes: [UInt8]) throws(StrictJSON.Problem) {
        self = try StrictJSON.parse(bytes)
    }

    public static func int(_ v: some BinaryInteger) -> JSONValue { .number(String(v)) }

    public subscript(key: String) -> JSONValue? {
        if case let .object(o) = self { return o[key] }
        return nil
    }

    public var stringValue: String? { if case let .string(s) = self { s } else { nil } }
    public var boolValue: Bool? { if case let .bool(b) = self { b } else { nil } }
    public var arrayValue: [JSONValue]? { if case let .array(a) = self { a } else { nil } }
    public var objectValue: [String: JSONValue]? { if case let .object(o) = self { o } else { nil } }
    public var isNull: Bool { self == .null }
    public var doubleValue: Double? { if case let .number(n) = self { Double(n) } else { nil } }

    /// Why a value is not a signed 64-bit integer.
    public enum IntegerProblem: Error, Sendable {
        case notInteger
        case outOfRange
    }

    /// The value as a signed 64-bit integer: an integer literal, or a number with no fraction
    /// (`1.0`, `1e3`). A value outside Int64 is `.outOfRange`, never wrapped around.
    public func integer() -> Result<Int64, IntegerProblem> {
        guard case let .number(text) = self else { return .failure(.notInteger) }
        if !text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) {
            return Int64(text).map { .success($0) } ?? .failure(.outOfRange)
        }
        guard let d = Double(text), d.isFinite else { return .failure(.outOfRange) }
        guard d == d.rounded() else { return .failure(.notInteger) }
        guard abs(d) < 9.2e18 else { return .failure(.outOfRange) }
        return .success(Int64(d))
    }

    /// The value as an Int64 when it is one, else nil.
    public var int64Value: Int64? { try? integer().get() }

    /// The JSON type name (`"integer"` for numbers without fraction or exponent), as a WoT
    /// Thing Description states it.
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case let .number(n): n.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) ? "number" : "integer"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }
}

// Not ExpressibleByNilLiteral: `nil` must keep meaning "absent" for a `JSONValue?`, not `.null`.
extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByFloatLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .number(String(value)) }
    public init(floatLiteral value: Double) { self = .number(String(value)) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) { self = .object(Dictionary(elements, uniquingKeysWith: { $1 })) }
}
