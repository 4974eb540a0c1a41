import Foundation
import TestCertificates

/// A throwaway certificate authority with a server certificate for 127.0.0.1/localhost and a
/// client certificate, for serving and calling the test server over TLS (P-256, as kubeadm
/// issues them).
public struct TestPKI: Sendable {
    public let caCertificatePEM: String
    public let serverCertificatePEM: String
    public let serverKeyPEM: String
    public let clientCertificatePEM: String
    public let clientKeyPEM: String

    /// - Parameter loopbackIPInCertificate: whether the server certificate also names
    ///   127.0.0.1 (without it, a client must check it against `localhost`, as with `tls-server-name`).
    public init(validFor lifetime: TimeInterval = 86_400, clientCommonName: String = "admin", clientOrganization: String = "system:masters", loopbackIPInCertificate: Bool = true) throws {
        let ca = try TestCertificateAuthority(commonName: "kubernetes-test-ca", keyType: .p256, lifetime: lifetime)
        let notAfter = Date() + lifetime
        let server = try ca.issue(commonName: "kube-apiserver", keyType: .p256,
                                  usage: .server(names: ["localhost"] + (loopbackIPInCertificate ? ["127.0.0.1"] : [])), notAfter: notAfter)
        let client = try ca.issue(commonName: clientCommonName, organization: clientOrganization, keyType: .p256, usage: .client, notAfter: notAfter)
        caCertificatePEM = ca.certificatePEM
        (serverCertificatePEM, serverKeyPEM) = server
        (clientCertificatePEM, clientKeyPEM) = client
    }
}
