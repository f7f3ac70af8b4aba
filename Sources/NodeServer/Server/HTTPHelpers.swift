import FlowchainWire
import Foundation
import Hummingbird
import NIOCore

/// The write token a request presents: `?token=` (devices rarely set headers) or a bearer header.
func presentedToken(_ request: Request) -> String? {
    if let t = request.uri.queryParameters.get("token") { return t }
    if let auth = request.headers[.authorization], auth.hasPrefix("Bearer ") { return String(auth.dropFirst(7)) }
    return nil
}

func jsonResponse(_ bytes: [UInt8], status: HTTPResponse.Status = .ok) -> Response {
    Response(status: status, headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
             body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
}

func jsonError(_ status: HTTPResponse.Status, _ message: String) -> Response {
    var w = JSONWriter()
    w.beginObject(); w.key("error"); w.beginObject(); w.field("status", Int(status.code)); w.field("message", message); w.endObject(); w.endObject()
    return jsonResponse(w.bytes, status: status)
}

func queryInt(_ request: Request, _ name: String) throws -> Int64? {
    guard let text = request.uri.queryParameters.get(name) else { return nil }
    guard let v = Int64(text) else { throw HTTPError(.badRequest, message: "query parameter '\(name)' must be an integer, got '\(text)'") }
    return v
}
