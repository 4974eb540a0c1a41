import Crypto
import Foundation
import SwiftASN1
import X509

/// A PKI shaped like Talos': an Ed25519 CA, an Ed25519 server certificate for 127.0.0.1, and
/// Ed25519 client certificates whose Organization is the Talos role (`os:admin`,
/// `os:etcd:backup`, `os:reader`). Talosconfigs it writes carry the key under the
/// `ED25519 PRIVATE KEY` label, exactly as talosctl writes them.
public struct TalosPKI: Sendable {
    public let caPEM: String
    public let serverCertificatePEM: String
    public let serverKeyPEM: String
    private let caKey: Curve25519.Signing.PrivateKey
    private let caName: DistinguishedName

    public init(serverAddresses: [String] = ["127.0.0.1"]) throws {
        let now = Date()
        caKey = Curve25519.Signing.PrivateKey()
        caName = try DistinguishedName { OrganizationName("talos"); CommonName("talos") }
        let ca = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(caKey.publicKey),
            notValidBefore: now - 300, notValidAfter: now + 86_400, issuer: caName, subject: caName,
            signatureAlgorithm: .ed25519,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(KeyUsage(keyCertSign: true))
            },
            issuerPrivateKey: .init(caKey))
        let serverKey = Curve25519.Signing.PrivateKey()
        let names: [GeneralName] = serverAddresses.map { address in
            let parts = address.split(separator: ".").compactMap { UInt8($0) }
            return parts.count == 4 ? .ipAddress(ASN1OctetString(contentBytes: ArraySlice(parts))) : .dnsName(address)
        }
        let server = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(serverKey.publicKey),
            notValidBefore: now - 300, notValidAfter: now + 86_400, issuer: caName,
            subject: try DistinguishedName { CommonName("talos-test-node") },
            signatureAlgorithm: .ed25519,
            extensions: try Certificate.Extensions {
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames(names)
            },
            issuerPrivateKey: .init(caKey))
        caPEM = try ca.serializeAsPEM().pemString
        serverCertificatePEM = try server.serializeAsPEM().pemString
        serverKeyPEM = serverKey.pemRepresentation
    }

    /// The kind of client key: Ed25519 as Talos issues them, or ECDSA P-256.
    public enum ClientKeyType: Sendable {
        case ed25519, p256
    }

    /// A client certificate and key for `role`, valid from `notBefore` to `notAfter`.
    public func clientCredentials(role: String, keyType: ClientKeyType = .ed25519, notBefore: Date = Date() - 300, notAfter: Date = Date() + 86_400) throws -> (certificatePEM: String, keyPEM: String) {
        let publicKey: Certificate.PublicKey
        let keyPEM: String
        switch keyType {
        case .ed25519:
            let key = Curve25519.Signing.PrivateKey()
            publicKey = .init(key.publicKey)
            // talosctl writes PKCS#8 Ed25519 keys under this label.
            keyPEM = key.pemRepresentation.replacingOccurrences(of: "PRIVATE KEY", with: "ED25519 PRIVATE KEY")
        case .p256:
            let key = P256.Signing.PrivateKey()
            publicKey = .init(key.publicKey)
            keyPEM = key.pemRepresentation
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: publicKey,
            notValidBefore: notBefore, notValidAfter: notAfter, issuer: caName,
            subject: try DistinguishedName { OrganizationName(role) },
            signatureAlgorithm: .ed25519,
            extensions: try Certificate.Extensions {
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.clientAuth])
            },
            issuerPrivateKey: .init(caKey))
        return (try certificate.serializeAsPEM().pemString, keyPEM)
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
