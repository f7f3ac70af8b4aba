import FlowchainWire
import Foundation
import Ledger
import FlowchainCrypto

/// A W3C WoT Thing Description (TD 1.1, JSON-LD) for a device, with one property per key of its
/// newest payload and forms pointing at this node's endpoints.
enum ThingDescription {
    static func make(device: String, host: String, services: NodeServices) async throws -> [UInt8]? {
        guard let latest = try await services.store.offload({ try $0.readings(device: device, limit: 1, newestFirst: true) }).first else { return nil }
        let payload = (try? StrictJSON.parse(latest.reading.payload))?.objectValue ?? [:]
        let secured = services.configuration.token != nil
        var w = JSONWriter()
        w.beginObject()
        w.key("@context"); w.string("https://www.w3.org/2022/wot/td/v1.1")
        w.field("@type", "Thing")
        w.field("id", "urn:flowchain:\(services.publicKey.hex.prefix(16)):\(device)")
        w.field("title", device)
        w.field("description", "Device \(device) as recorded by Flowchain node \(services.publicKey.hex.prefix(16))…: signed readings in a hash-linked ledger.")
        w.key("securityDefinitions"); w.beginObject()
        w.key("nosec_sc"); w.beginObject(); w.field("scheme", "nosec"); w.endObject()
        w.key("bearer_sc"); w.beginObject(); w.field("scheme", "bearer"); w.field("in", "query"); w.field("name", "token"); w.endObject()
        w.endObject()
        w.key("security"); w.beginArray(); w.string(secured ? "bearer_sc" : "nosec_sc"); w.endArray()
        w.key("properties"); w.beginObject()
        for key in payload.keys.sorted() {
            w.key(key); w.beginObject()
            w.field("type", payload[key]?.typeName ?? "null")
            w.field("readOnly", true)
            w.field("observable", true)
            w.key("forms"); w.beginArray()
            w.beginObject()
            w.field("href", "http://\(host)/object/\(device)/readings")
            w.field("contentType", "application/json")
            w.key("op"); w.beginArray(); w.string("readproperty"); w.endArray()
            w.endObject()
            w.beginObject()
            w.field("href", "ws://\(host)/object/\(device)/viewer")
            w.field("contentType", "application/json")
            w.key("op"); w.beginArray(); w.string("observeproperty"); w.endArray()
            w.endObject()
            w.endArray()
            w.endObject()
        }
        w.endObject()
        w.key("links"); w.beginArray()
        for (rel, path) in [("send", "send"), ("viewer", "viewer"), ("status", "status")] {
            w.beginObject(); w.field("rel", rel); w.field("href", "ws://\(host)/object/\(device)/\(path)"); w.endObject()
        }
        w.endArray()
        w.key("flowchain"); w.beginObject()
        w.field("isAlive", services.presence.isAlive(device))
        w.field("lastSeq", latest.reading.seq)
        w.field("lastTime", latest.reading.time)
        w.field("node", services.publicKey.hex)
        w.endObject()
        w.endObject()
        return w.bytes
    }
}
