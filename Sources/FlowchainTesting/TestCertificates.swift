import Foundation
import ProcessSupport

/// A throwaway PKI made with `openssl` for TLS tests: a CA, a server certificate for 127.0.0.1
/// and a client certificate, all signed by the CA (RSA 2048, valid two days).
public struct TestCertificates: Sendable {
    public let dir: TemporaryDirectory
    public var ca: String { dir.file("ca.crt") }
    public var serverCertificate: String { dir.file("server.crt") }
    public var serverKey: String { dir.file("server.key") }
    public var clientCertificate: String { dir.file("client.crt") }
    public var clientKey: String { dir.file("client.key") }

    public static let openssl = "/usr/bin/openssl"

    public init() async throws {
        dir = TemporaryDirectory("pki")
        try "subjectAltName=IP:127.0.0.1\n".write(toFile: dir.file("server.ext"), atomically: true, encoding: .utf8)
        try "extendedKeyUsage=clientAuth\n".write(toFile: dir.file("client.ext"), atomically: true, encoding: .utf8)
        let d = dir
        let steps: [[String]] = [
            ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=flowchain test CA", "-keyout", d.file("ca.key"), "-out", d.file("ca.crt")],
            ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", d.file("server.key"), "-out", d.file("server.csr")],
            ["x509", "-req", "-in", d.file("server.csr"), "-CA", d.file("ca.crt"), "-CAkey", d.file("ca.key"), "-CAcreateserial", "-days", "2",
             "-extfile", d.file("server.ext"), "-out", d.file("server.crt")],
            ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=flowchain-node", "-keyout", d.file("client.key"), "-out", d.file("client.csr")],
            ["x509", "-req", "-in", d.file("client.csr"), "-CA", d.file("ca.crt"), "-CAkey", d.file("ca.key"), "-CAcreateserial", "-days", "2",
             "-extfile", d.file("client.ext"), "-out", d.file("client.crt")],
        ]
        for (i, args) in steps.enumerated() {
            let p = try ChildProcess(executable: Self.openssl, args, outputPath: d.file("openssl-\(i).log"))
            guard try await p.wait(timeout: .seconds(60)) == 0 else { throw PKIError.failed(args.joined(separator: " "), p.output) }
        }
    }

    /// mosquitto listener lines: TLS with this server certificate; client certificates signed
    /// by the CA required when `requireClientCertificate`.
    public func brokerListener(requireClientCertificate: Bool) -> String {
        """
        allow_anonymous true
        cafile \(ca)
        certfile \(serverCertificate)
        keyfile \(serverKey)
        require_certificate \(requireClientCertificate)
        """
    }

    public enum PKIError: Error, CustomStringConvertible {
        case failed(String, String)
        public var description: String {
            switch self { case let .failed(command, output): "openssl \(command) failed:\n\(output)" }
        }
    }
}
