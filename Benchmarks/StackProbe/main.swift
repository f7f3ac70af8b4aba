import Foundation
import GRDB
import Hummingbird
import HummingbirdWebSocket

// The reference for the node's idle memory: the dependency stack alone (Hummingbird with its
// WebSocket upgrade, a GRDB DatabasePool in WAL mode), serving one route and doing nothing else.
// `flowchain bench rpc` measures its RSS beside the node's.
let dir = CommandLine.arguments.dropFirst().first ?? NSTemporaryDirectory() + "stack-probe-\(getpid())"
try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
let db = try DatabasePool(path: dir + "/probe.sqlite")
try db.write { try $0.execute(sql: "CREATE TABLE IF NOT EXISTS t(x)") }
let router = Router()
router.get("/health") { _, _ in "ok" }
let ws = Router(context: BasicWebSocketRequestContext.self)
ws.ws("/ws") { inbound, outbound, _ in
    for try await message in inbound.messages(maxSize: 1 << 16) {
        if case .text(let t) = message { try await outbound.write(.text(t)) }
    }
}
let app = Application(router: router, server: .http1WebSocketUpgrade(webSocketRouter: ws),
                      configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                      onServerRunning: { FileHandle.standardOutput.write(Data("listening on port \($0.localAddress?.port ?? 0)\n".utf8)) })
try await app.runService()
