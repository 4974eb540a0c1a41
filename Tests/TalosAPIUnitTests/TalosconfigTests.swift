import Crypto
import ConfigurationFiles
import Foundation
import SwiftASN1
import TalosAPI
import Testing
import X509

/// A PKI shaped like Talos': an Ed25519 CA and an Ed25519 client certificate with
/// Organization `os:admin`, the key written as talosctl writes it (PKCS#8 under the label
/// `ED25519 PRIVATE KEY`).
struct TalosconfigFixture {
    let caPEM: String
    let certificatePEM: String
    let keyPEM: String

    init(organization: String = "os:admin") throws {
        let now = Date()
        let caKey = Curve25519.Signing.PrivateKey()
        let caName = try DistinguishedName { OrganizationName("talos"); CommonName("talos") }
        let ca = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(caKey.publicKey),
            notValidBefore: now - 60, notValidAfter: now + 3600, issuer: caName, subject: caName,
            signatureAlgorithm: .ed25519,
            extensions: try Certificate.Extensions { Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil)) },
            issuerPrivateKey: .init(caKey))
        let clientKey = Curve25519.Signing.PrivateKey()
        let client = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(clientKey.publicKey),
            notValidBefore: now - 60, notValidAfter: now + 3600, issuer: caName,
            subject: try DistinguishedName { OrganizationName(organization) },
            signatureAlgorithm: .ed25519,
            extensions: try Certificate.Extensions { try ExtendedKeyUsage([.clientAuth]) },
            issuerPrivateKey: .init(caKey))
        caPEM = try ca.serializeAsPEM().pemString
        certificatePEM = try client.serializeAsPEM().pemString
        keyPEM = clientKey.pemRepresentation.replacingOccurrences(of: "PRIVATE KEY", with: "ED25519 PRIVATE KEY")
    }

    func talosconfig(context: String = "prod", endpoints: [String] = ["10.5.0.2", "10.5.0.3:50001"], nodes: [String]? = ["10.5.0.2"],
                     key: String? = nil, extra: String = "") -> String {
        func b64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }
        let nodeLines = nodes.map { "    nodes:\n" + $0.map { "      - \($0)\n" }.joined() } ?? ""
        return """
            context: \(context)
            contexts:
              \(context):
                endpoints:
            \(endpoints.map { "      - \"\($0)\"\n" }.joined())\(nodeLines)    ca: \(b64(caPEM))
                crt: \(b64(certificatePEM))
                key: \(key ?? b64(keyPEM))
            \(extra)
            """
    }
}

@Suite("talosconfig")
struct TalosconfigTests {
    @Test("reads endpoints (default port 50000, IPv6), nodes and Ed25519 credentials as talosctl writes them")
    func parses() throws {
        let pki = try TalosconfigFixture()
        let context = try Talosconfig.parse(
            pki.talosconfig(endpoints: ["10.5.0.2", "cp.example.com:50001", "[fd00::2]", "[fd00::3]:50002", "fd00::4"]),
            source: "test")
        #expect(context.name == "prod")
        #expect(context.endpoints.map(\.description) == ["10.5.0.2:50000", "cp.example.com:50001", "[fd00::2]:50000", "[fd00::3]:50002", "[fd00::4]:50000"])
        #expect(context.nodes == ["10.5.0.2"])
        #expect(context.keyPEM.contains("-----BEGIN PRIVATE KEY-----"))
        #expect(!context.description.contains("PRIVATE"))
    }

    @Test("the deprecated target is the node when nodes is absent; an explicit context is honoured")
    func targetAndContext() throws {
        let pki = try TalosconfigFixture()
        let text = pki.talosconfig(nodes: nil).replacingOccurrences(of: "    ca:", with: "    target: 10.5.0.9\n    ca:")
        #expect(try Talosconfig.parse(text, source: "test").nodes == ["10.5.0.9"])
        #expect(try Talosconfig.parse(pki.talosconfig(context: "staging"), source: "test", context: "staging").name == "staging")
    }

    @Test("errors name the problem", arguments: [
        ("yaml", "test: is not valid YAML (line 2, column 1: did not find expected ',' or ']')"),
        ("empty", "test: is empty"),
        ("too-many-endpoints", "test, context \"prod\", endpoints: 65 endpoints; at most 64 are read"),
        ("long-bad-endpoint", "test, context \"prod\", endpoints[0]: \"\(String(repeating: "h", count: 300))...\" is not host, host:port or [ipv6]:port"),
        ("no-contexts", "test, contexts: required: the talosconfig has no contexts"),
        ("unknown-context", "test, context \"nope\": no such context (the file has: prod)"),
        ("empty-endpoints", "test, context \"prod\", endpoints: empty: at least one control-plane endpoint is needed"),
        ("bad-endpoint", "test, context \"prod\", endpoints[0]: \"host:99999\" is not host, host:port or [ipv6]:port"),
        ("bad-base64", "test, context \"prod\", key: is not valid base64"),
        ("not-pem", "test, context \"prod\", key: does not hold a PEM ED25519 PRIVATE KEY or PRIVATE KEY or EC PRIVATE KEY"),
        ("mismatch", "test, context \"prod\", key: does not match the certificate in crt"),
    ])
    func errors(kind: String, message: String) throws {
        let pki = try TalosconfigFixture()
        let text: String
        var context: String?
        switch kind {
        case "yaml": text = "context: [unclosed"
        case "empty": text = "# nothing\n"
        case "too-many-endpoints": text = pki.talosconfig(endpoints: (0...64).map { "10.0.0.\($0)" })
        case "long-bad-endpoint": text = pki.talosconfig(endpoints: [String(repeating: "h", count: 5000) + ":0"])
        case "no-contexts": text = "context: prod\n"
        case "unknown-context": text = pki.talosconfig(); context = "nope"
        case "empty-endpoints": text = pki.talosconfig(endpoints: [])
        case "bad-endpoint": text = pki.talosconfig(endpoints: ["host:99999"])
        case "bad-base64": text = pki.talosconfig(key: "not-base64!")
        case "not-pem": text = pki.talosconfig(key: Data("hello".utf8).base64EncodedString())
        default: text = pki.talosconfig(key: Data(try TalosconfigFixture().keyPEM.utf8).base64EncodedString())
        }
        #expect(throws: ConfigurationError.self) { try Talosconfig.parse(text, source: "test", context: context) }
        do {
            _ = try Talosconfig.parse(text, source: "test", context: context)
        } catch let error as ConfigurationError {
            #expect(error.description == message)
        }
    }

    /// Yams' own error text quotes the line at fault; in a talosconfig that line can hold the
    /// client key, which must never reach a status, an Event or a log.
    @Test("an invalid talosconfig's error does not quote it")
    func invalidYAMLIsNotQuoted() throws {
        let text = "context: prod\ncontexts:\n  prod:\n    key: LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0t: [\n"
        #expect(throws: ConfigurationError.self) { try Talosconfig.parse(text, source: "test") }
        do {
            _ = try Talosconfig.parse(text, source: "test")
        } catch {
            #expect(!"\(error)".contains("LS0tLS1CRUdJTi"))
            #expect("\(error)".contains("is not valid YAML (line 4"))
        }
    }

    @Test("endpoints that are not host names or addresses are refused", arguments: [
        "a b", "[a b]", "host/path", "user@host", "host?x", "[::1", "a]b[", "\t", String(repeating: "a", count: 254),
        // Found by FuzzTalosconfig: U+0600 is a prepended mark, one Character with the `:` after
        // it, so "!–\u{600}" printed as "!–\u{600}:50000" and read back as a host without a port.
        "!–\u{600}", "b\u{FC}cher.example", "host\u{301}:50000",
    ])
    func badEndpoints(text: String) {
        #expect(TalosEndpoint(parsing: text) == nil)
    }

    @Test("endpoints print as text that reads back as themselves", arguments: [
        "cp-1.example.com", "10.5.0.2:50001", "[fd00::2]:50000", "fd00::2", "[fe80::1%eth0]", "xn--bcher-kva.example",
    ])
    func endpointRoundTrip(text: String) throws {
        let endpoint = try #require(TalosEndpoint(parsing: text))
        #expect(TalosEndpoint(parsing: endpoint.description) == endpoint)
    }
}
