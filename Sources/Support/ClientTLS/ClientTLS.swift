import NIOSSL
import ConfigurationFiles

/// PEM bytes and the configuration field they came from, so a PEM that does not parse is
/// reported against that field.
public struct PEMField: Sendable {
    public var field: String
    public var pem: [UInt8]

    public init(field: String, pem: [UInt8]) {
        self.field = field
        self.pem = pem
    }
}

/// The one builder of client TLS settings (the Kubernetes API, S3, Talos): whom to trust,
/// whether to verify, who the client is. A PEM that does not parse is a
/// ``ConfigurationError`` naming `source` and the field.
public enum ClientTLS {
    /// Trusts `trust` (the system roots when nil), presents `identity` when given.
    public static func configuration(source: String, trust: PEMField?, identity: (certificate: PEMField, key: PEMField)? = nil,
                                     insecureSkipVerify: Bool = false) throws -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let trust {
            do {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(trust.pem))
            } catch {
                throw ConfigurationError(source: source, field: trust.field, problem: "is not a PEM certificate bundle")
            }
        }
        if insecureSkipVerify { tls.certificateVerification = .none }
        if let identity {
            try install(certificate: identity.certificate, key: identity.key, into: &tls, source: source)
        }
        return tls
    }

    /// Sets the client certificate chain and key of `tls` (also for credentials that rotate).
    public static func install(certificate: PEMField, key: PEMField, into tls: inout TLSConfiguration, source: String) throws {
        do {
            tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(certificate.pem).map { .certificate($0) }
        } catch {
            throw ConfigurationError(source: source, field: certificate.field, problem: "is not a PEM certificate")
        }
        do {
            tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: key.pem, format: .pem))
        } catch {
            throw ConfigurationError(source: source, field: key.field, problem: "is not a PEM private key")
        }
    }
}
