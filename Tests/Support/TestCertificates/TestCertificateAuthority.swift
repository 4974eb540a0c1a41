import Crypto
import Foundation
import SwiftASN1
import X509

/// A throwaway certificate authority for test servers and their clients: the one place tests
/// make certificates (the Kubernetes test server's P-256 PKI and the Talos test server's
/// Ed25519 one are both made here).
public struct TestCertificateAuthority: Sendable {
    /// The kind of key a certificate is made for.
    public enum KeyType: Sendable {
        case p256, ed25519
    }

    /// What a certificate is for.
    public enum Usage: Sendable {
        /// A server reachable at these DNS names and IPv4 addresses.
        case server(names: [String])
        case client
    }

    public let certificatePEM: String
    private let key: Certificate.PrivateKey
    private let keyType: KeyType
    private let name: DistinguishedName

    public init(commonName: String, organization: String? = nil, keyType: KeyType, lifetime: TimeInterval = 86_400,
                keyUsage: KeyUsage = KeyUsage(keyCertSign: true, cRLSign: true)) throws {
        let now = Date()
        let (key, _) = Self.makeKey(keyType)
        let name = try DistinguishedName {
            if let organization { OrganizationName(organization) }
            CommonName(commonName)
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: key.publicKey,
            notValidBefore: now - 300, notValidAfter: now + lifetime, issuer: name, subject: name,
            signatureAlgorithm: Self.signatureAlgorithm(keyType),
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(keyUsage)
            },
            issuerPrivateKey: key)
        self.certificatePEM = try certificate.serializeAsPEM().pemString
        self.key = key
        self.keyType = keyType
        self.name = name
    }

    /// A certificate signed by this authority and the PEM (PKCS#8) of its new key.
    public func issue(commonName: String? = nil, organization: String? = nil, keyType: KeyType, usage: Usage,
                      notBefore: Date = Date() - 300, notAfter: Date = Date() + 86_400) throws -> (certificatePEM: String, keyPEM: String) {
        let (subjectKey, keyPEM) = Self.makeKey(keyType)
        let subject = try DistinguishedName {
            if let organization { OrganizationName(organization) }
            if let commonName { CommonName(commonName) }
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: subjectKey.publicKey,
            notValidBefore: notBefore, notValidAfter: notAfter, issuer: name, subject: subject,
            signatureAlgorithm: Self.signatureAlgorithm(self.keyType),
            extensions: try Certificate.Extensions {
                switch usage {
                case .server(let names):
                    Critical(KeyUsage(digitalSignature: true, keyEncipherment: keyType == .p256))
                    try ExtendedKeyUsage([.serverAuth])
                    SubjectAlternativeNames(names.map(Self.generalName))
                case .client:
                    Critical(KeyUsage(digitalSignature: true))
                    try ExtendedKeyUsage([.clientAuth])
                }
            },
            issuerPrivateKey: key)
        return (try certificate.serializeAsPEM().pemString, keyPEM)
    }

    private static func makeKey(_ type: KeyType) -> (Certificate.PrivateKey, String) {
        switch type {
        case .p256:
            let key = P256.Signing.PrivateKey()
            return (.init(key), key.pemRepresentation)
        case .ed25519:
            let key = Curve25519.Signing.PrivateKey()
            return (.init(key), key.pemRepresentation)
        }
    }

    private static func signatureAlgorithm(_ type: KeyType) -> Certificate.SignatureAlgorithm {
        type == .p256 ? .ecdsaWithSHA256 : .ed25519
    }

    /// An IPv4 address as an IP SAN, anything else as a DNS name.
    private static func generalName(_ name: String) -> GeneralName {
        let octets = name.split(separator: ".").compactMap { UInt8($0) }
        return octets.count == 4 && name.split(separator: ".").count == 4
            ? .ipAddress(ASN1OctetString(contentBytes: ArraySlice(octets))) : .dnsName(name)
    }
}
