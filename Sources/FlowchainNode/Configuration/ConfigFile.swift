import Foundation
import Ledger

/// The optional JSON configuration file (`flowchain node --config FILE`). Every key is optional;
/// precedence is command-line flag > environment (`HOST`, `PORT`, `FLOWCHAIN_TOKEN`) > this file >
/// built-in default. See docs/configuration.md.
public struct ConfigFile: Codable, Sendable, Equatable {
    public var dataDir: String?
    public var host: String?
    public var port: Int?
    public var token: String?
    public var protectReads: Bool?
    public var blockInterval: Int?
    public var maxBlockReadings: Int?
    public var maxPayload: Int?
    public var maxFrameBytes: Int?
    public var maxConnections: Int?
    public var rateLimit: Int?
    public var pingInterval: Int?
    public var headerTimeout: Int?
    public var idleTimeout: Int?
    public var logLevel: String?

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case dataDir, host, port, token, protectReads, blockInterval, maxBlockReadings, maxPayload
        case maxFrameBytes, maxConnections, rateLimit, pingInterval, headerTimeout, idleTimeout, logLevel
    }

    /// Reads and checks `path`; unknown keys are an error (a typo must not pass silently).
    public static func load(_ path: String) throws -> ConfigFile {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw NodeError.configuration("cannot read config file \(path)")
        }
        let object: JSONValue
        do { object = try StrictJSON.parse(Array(data)) } catch {
            throw NodeError.configuration("config file \(path) is not valid JSON: \(error)")
        }
        guard let dict = object.objectValue else { throw NodeError.configuration("config file \(path) must hold a JSON object") }
        let known = Set(CodingKeys.allCases.map(\.rawValue))
        if let unknown = dict.keys.filter({ !known.contains($0) }).sorted().first {
            throw NodeError.configuration("config file \(path): unknown key '\(unknown)' (known: \(known.sorted().joined(separator: ", ")))")
        }
        do {
            return try JSONDecoder().decode(ConfigFile.self, from: data)
        } catch let Swift.DecodingError.typeMismatch(_, context) {
            throw NodeError.configuration("config file \(path): '\(context.codingPath.map(\.stringValue).joined(separator: "."))' has the wrong type")
        } catch {
            throw NodeError.configuration("config file \(path): \(error)")
        }
    }
}
