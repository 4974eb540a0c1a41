import Foundation
@_exported import TestCertificates  // ClientKeyType is its KeyType

/// A PKI shaped like Talos': an Ed25519 CA, an Ed25519 server certificate for 127.0.0.1, and
/// Ed25519 client certificates whose Organization is the Talos role (`os:admin`,
/// `os:etcd:backup`, `os:reader`). Talosconfigs it writes carry the key under the
/// `ED25519 PRIVATE KEY` label, exactly as talosctl writes them.
public struct TalosPKI: Sendable {
    public let caPEM: String
    public let serverCertificatePEM: String
    public let serverKeyPEM: String
    private let ca: TestCertificateAuthority

    public init(serverAddresses: [String] = ["127.0.0.1"]) throws {
        ca = try TestCertificateAuthority(commonName: "talos", organization: "talos", keyType: .ed25519, keyUsage: .init(keyCertSign: true))
        caPEM = ca.certificatePEM
        (serverCertificatePEM, serverKeyPEM) = try ca.issue(commonName: "talos-test-node", keyType: .ed25519, usage: .server(names: serverAddresses))
    }

    /// The kind of client key: Ed25519 as Talos issues them, or ECDSA P-256.
    public typealias ClientKeyType = TestCertificateAuthority.KeyType

    /// A client certificate and key for `role`, valid from `notBefore` to `notAfter`.
    public func clientCredentials(role: String, keyType: ClientKeyType = .ed25519, notBefore: Date = Date() - 300, notAfter: Date = Date() + 86_400) throws -> (certificatePEM: String, keyPEM: String) {
        let (certificate, key) = try ca.issue(organization: role, keyType: keyType, usage: .client, notBefore: notBefore, notAfter: notAfter)
        // talosctl writes PKCS#8 Ed25519 keys under this label.
        return (certificate, keyType == .ed25519 ? key.replacingOccurrences(of: "PRIVATE KEY", with: "ED25519 PRIVATE KEY") : key)
    }

    /// A talosconfig (context `test`) for `role`, reaching `endpoints` and targeting `nodes`.
    public func talosconfig(role: String, endpoints: [String], nodes: [String] = [], keyType: ClientKeyType = .ed25519, notAfter: Date = Date() + 86_400) throws -> String {
        let (certificate, key) = try clientCredentials(role: role, keyType: keyType, notAfter: notAfter)
        func b64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }
        var text = "context: test\ncontexts:\n  test:\n    endpoints:\n"
        for endpoint in endpoints { text += "      - \"\(endpoint)\"\n" }
        if !nodes.isEmpty {
            text += "    nodes:\n"
            for node in nodes { text += "      - \"\(node)\"\n" }
        }
        text += "    ca: \(b64(caPEM))\n    crt: \(b64(certificate))\n    key: \(b64(key))\n"
        return text
    }
}
