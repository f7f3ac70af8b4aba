import FlowchainCrypto
import FlowchainTesting
import Foundation
import Testing

@Suite("Key files")
struct KeyFileTests {
    @Test func createIsPrivateAndLoadsBack() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("node.key")
        let key = try KeyFile.create(at: path)
        let mode = try (FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue
        #expect(mode == 0o600)
        #expect(try KeyFile.load(from: path).publicKey == key.publicKey)
    }

    @Test func refusesToOverwrite() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("node.key")
        let first = try KeyFile.create(at: path)
        #expect(throws: KeyError.keyFileExists(path: path)) { try KeyFile.create(at: path) }
        #expect(try KeyFile.load(from: path).publicKey == first.publicKey)
    }

    @Test func refusesGroupReadableFile() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("node.key")
        try KeyFile.create(at: path)
        chmod(path, 0o644)
        #expect(throws: KeyError.insecurePermissions(path: path, mode: 0o644)) { try KeyFile.load(from: path) }
    }

    @Test(arguments: [
        ("", "expected a line starting with 'ed25519-seed:'"),
        ("ed25519-seed:xyz", "the seed is not hexadecimal"),
        ("ed25519-seed:abcd", "the seed is 2 bytes, expected 32"),
    ])
    func malformedFilesNameTheProblem(content: String, reason: String) throws {
        let dir = TemporaryDirectory()
        let path = dir.file("node.key")
        _ = FileManager.default.createFile(atPath: path, contents: Data(content.utf8), attributes: [.posixPermissions: 0o600])
        #expect(throws: KeyError.malformedKeyFile(path: path, reason: reason)) { try KeyFile.load(from: path) }
    }

    @Test func missingFileSaysHowToCreateOne() {
        let error = KeyError.keyFileMissing(path: "/nowhere/node.key")
        #expect(error.description.contains("flowchain keygen"))
        #expect(throws: error) { try KeyFile.load(from: "/nowhere/node.key") }
    }
}
