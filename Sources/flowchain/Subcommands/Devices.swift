import ArgumentParser
import FlowchainCrypto
import Foundation
import Ledger
import FlowchainClient
import FlowchainWire

/// `flowchain devices`: who may write as each device.
struct DevicesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devices",
        abstract: "Register devices: bind an id to its signing key, or give it its own token.",
        discussion: """
            A device id is bound to the key that signs its first reading (trust on first use) \
            unless it was registered first; readings for it signed by any other key are refused \
            (wrong_signer). Devices that cannot sign can get a token of their own, so that one \
            device's credential cannot write another's readings. Re-keying is explicit and logged.

            Work on a data directory (also while its node runs) or, with --node and the node's \
            token, over JSON-RPC:

              flowchain devices add kitchen --key 3d4017c3e8…                 # bind to a key
              flowchain devices add porch --token                             # prints porch's own token, once
              flowchain devices rekey kitchen --key 9c0007698f…               # replace a lost key
              flowchain devices list
              flowchain devices add kitchen --key … --node ws://pi:8000 --token-of-node $TOKEN
            """,
        subcommands: [DevicesList.self, DevicesAdd.self, DevicesRekey.self]
    )
}

/// Where a `devices` subcommand acts: a local data directory, or a running node over RPC.
struct DeviceTarget: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The node's data directory.", valueName: "dir"))
    var dataDir: String = "./flowchain-data"

    @Option(help: ArgumentHelp("A running node (ws://host:port) to register with over JSON-RPC instead.", valueName: "url"))
    var node: String?

    @Option(name: .customLong("token-of-node"), help: ArgumentHelp("The node's token, for --node (env FLOWCHAIN_TOKEN).", valueName: "token"))
    var nodeToken: String?

    var resolvedNodeToken: String? { nodeToken ?? ProcessInfo.processInfo.environment["FLOWCHAIN_TOKEN"] }

    /// Calls `method` on the node given with --node; its result object, or the error as an exit.
    func call(_ method: String, _ params: [String: JSONValue]) async throws -> [String: JSONValue] {
        do {
            return try await RPCConnection.with(node ?? "", token: resolvedNodeToken) { rpc in
                try await rpc.call(method, params).objectValue ?? [:]
            }
        } catch { throw failure("\(error)") }
    }

    /// The local store, opened for writing (migrated, tail verified).
    func openStore() throws -> LedgerStore {
        let path = (dataDir as NSString).appendingPathComponent("ledger.sqlite")
        guard FileManager.default.fileExists(atPath: path) else {
            throw failure("no ledger at \(path); run `flowchain node --data-dir \(dataDir)` once first, or pass --node")
        }
        LedgerStore.requestPublish(path: path)
        return try LedgerStore(path: path, owner: nil)
    }
}

func parseKey(_ hex: String) throws -> PublicKey {
    guard let bytes = Hex.decode(hex), bytes.count == 32, let key = try? PublicKey(bytes: bytes) else {
        throw ValidationError("--key must be 64 hex digits (an Ed25519 public key)")
    }
    return key
}


struct DevicesList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List registered and bound devices.",
        discussion: """
            From a data directory: each device's signer, whether it has a token of its own, and how \
            and when it was bound. With --node: the devices the running node has readings of, with \
            their last seq and time and whether a sender is connected (the `devices` JSON-RPC method; \
            bindings are only listed from a data directory).
            """)

    @OptionGroup var target: DeviceTarget
    @OptionGroup var output: JSONOption

    func run() async throws {
        if let node = target.node {
            let result: JSONValue
            do {
                result = try await RPCConnection.with(node, token: target.resolvedNodeToken) { try await $0.call("devices", [:]) }
            } catch { throw failure("\(error)") }
            if output.json { print(result.jsonText); return }
            let items = result.arrayValue ?? []
            if items.isEmpty { print("no devices yet"); return }
            for d in items {
                let time = d["lastTime"]?.int64Value.map(isoTime) ?? "-"
                print("\(d["device"]?.stringValue ?? "?")  last seq \(d["lastSeq"]?.int64Value.map(String.init) ?? "-")  \(time)\(d["isAlive"]?.boolValue == true ? "  sender connected" : "")")
            }
            return
        }
        let store: LedgerStore
        do { store = try target.openStore() } catch let e as ExitCode { throw e } catch { throw failure("\(error)") }
        let records = try store.registeredDevices()
        if output.json {
            let list: JSONValue = .array(records.map { r in
                ["device": .string(r.device), "signer": r.signer.map { .string($0.hex) } ?? .null, "hasToken": .bool(r.tokenHash != nil),
                 "boundBy": .string(r.boundBy.rawValue), "boundAt": .int(r.boundAt)]
            })
            print(list.jsonText)
            return
        }
        if records.isEmpty { print("no devices yet"); return }
        for r in records {
            print("\(r.device)  signer \(r.signer?.hex ?? "(not bound yet)")  \(r.tokenHash != nil ? "own token" : "node token")  \(r.boundBy.rawValue) \(isoTime(r.boundAt))")
        }
    }
}

struct DevicesAdd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Bind a device to its signing key (--key) and/or give it its own token (--token).",
        discussion: "The token is printed once; only its hash is kept. Giving a device a new token replaces its old one.")

    @Argument(help: "The device id.") var device: String
    @Option(help: ArgumentHelp("The device's Ed25519 public key, 64 hex digits.", valueName: "hex")) var key: String?
    @Flag(help: "Give the device a token of its own and print it.") var token = false
    @OptionGroup var target: DeviceTarget

    func validate() throws {
        if let why = DeviceID.problem(with: device) { throw ValidationError("device: \(why)") }
        guard key != nil || token else { throw ValidationError("give --key HEX, --token, or both") }
        if let key { _ = try parseKey(key) }
    }

    func run() async throws {
        let key = try self.key.map(parseKey)
        if target.node != nil {
            var params: [String: JSONValue] = ["device": .string(device), "token": .bool(token)]
            if let key { params["key"] = .string(key.hex) }
            let result = try await target.call("addDevice", params)
            report(signer: result["signer"]?.stringValue, token: result["token"]?.stringValue)
            return
        }
        do {
            let store = try target.openStore()
            if let key { try store.register(device: device, key: key, now: nowMillis()) }
            let issued = token ? try store.issueToken(device: device, now: nowMillis()) : nil
            report(signer: try store.device(device)?.signer?.hex, token: issued)
            try store.close()
        } catch let e as ExitCode { throw e } catch { throw failure("\(error)") }
    }

    func report(signer: String?, token: String?) {
        print("device \(device): signer \(signer ?? "(bound on first use)")")
        if let token {
            print("token \(token)")
            FileHandle.standardError.write(Data("flowchain: keep this token; it is not shown again. The device sends with ?token=\(token)\n".utf8))
        }
    }
}

struct DevicesRekey: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rekey",
        abstract: "Re-bind a device to a new signing key (e.g. after replacing its hardware).",
        discussion: "Earlier readings keep their signatures; only readings signed by the new key are accepted from now on.")

    @Argument(help: "The device id.") var device: String
    @Option(help: ArgumentHelp("The device's new Ed25519 public key, 64 hex digits.", valueName: "hex")) var key: String
    @OptionGroup var target: DeviceTarget

    func validate() throws {
        if let why = DeviceID.problem(with: device) { throw ValidationError("device: \(why)") }
        _ = try parseKey(key)
    }

    func run() async throws {
        let key = try parseKey(self.key)
        if target.node != nil {
            let result = try await target.call("rekeyDevice", ["device": .string(device), "key": .string(key.hex)])
            print("device \(device): re-keyed from \(result["previous"]?.stringValue ?? "(unbound)") to \(key.hex)")
            return
        }
        do {
            let store = try target.openStore()
            let (old, _) = try store.rekey(device: device, key: key, now: nowMillis())
            print("device \(device): re-keyed from \(old?.hex ?? "(unbound)") to \(key.hex)")
            try store.close()
        } catch let e as ExitCode { throw e } catch { throw failure("\(error)") }
    }
}
