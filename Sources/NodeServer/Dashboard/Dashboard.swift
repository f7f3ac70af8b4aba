import Foundation
import Hummingbird
import NIOCore

/// The dashboard: one HTML page and one script from the package's resources, no build step.
enum Dashboard {
    static let html: [UInt8] = load("index", "html")
    static let js: [UInt8] = load("dashboard", "js")

    static func load(_ name: String, _ ext: String) -> [UInt8] {
        guard let url = Bundle.module.url(forResource: name, withExtension: ext, subdirectory: "Resources"),
              let data = try? Data(contentsOf: url) else {
            return Array("dashboard resource \(name).\(ext) is missing from this build".utf8)
        }
        return Array(data)
    }

    static func page() -> Response {
        Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(bytes: html)))
    }

    static func script() -> Response {
        Response(status: .ok, headers: [.contentType: "text/javascript; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(bytes: js)))
    }
}
