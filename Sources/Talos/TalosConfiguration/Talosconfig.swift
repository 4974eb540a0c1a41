import Crypto
import ConfigurationFiles
import Foundation
import SwiftASN1
import X509

/// One talosconfig context, resolved: where to connect, which nodes to target, and the
/// credentials for mutual TLS. Its description never shows the key.
public struct TalosContext: Sendable, CustomStringConvertible {
    public var name: String
    /// `host:port` endpoints in order (port 50000 when the file gives none; IPv6 in brackets).
    public var endpoints: [TalosEndpoint]
    /// Nodes to target through the endpoints (gRPC metadata `node`); empty: the endpoint itself.
    public var nodes: [String]
    public var caPEM: String
    public var certificatePEM: String
    /// PKCS#8 or SEC1 PEM, relabelled from Talos' `ED25519 PRIVATE KEY` to `PRIVATE KEY`.
    public var keyPEM: String

    public init(name: String, endpoints: [TalosEndpoint], nodes: [String], caPEM: String, certificatePEM: String, keyPEM: String) {
        self.name = name
        self.endpoints = endpoints
        self.nodes = nodes
        self.caPEM = caPEM
        self.certificatePEM = certificatePEM
        self.keyPEM = keyPEM
    }

    public var description: String {
        "TalosContext(\(name), endpoints: \(endpoints.map(\.description)), nodes: \(nodes), key: <redacted>)"
    }
}

/// A Talos API endpoint.
public struct TalosEndpoint: Sendable, Hashable, CustomStringConvertible {
    public static let defaultPort = 50000
    public var host: String
    public var port: Int

    public init(host: String, port: Int = defaultPort) {
        self.host = host
        self.port = port
    }

    /// Parses `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address. A host is a
    /// DNS name (internationalized ones in their `xn--` form) or an IP address: ASCII letters,
    /// digits, `.`, `-`, `_`, and `:` and `%` for IPv6, at most 253 bytes.
    public init?(parsing text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        // ASCII only, so that the parse below, by Character, is a parse by byte (a combining
        // or prepended mark would otherwise join the `:` it sits beside).
        guard !trimmed.isEmpty, trimmed.utf8.allSatisfy({ $0 < 0x80 }) else { return nil }
        if trimmed.hasPrefix("[") {
            guard let close = trimmed.firstIndex(of: "]") else { return nil }
            host = String(trimmed[trimmed.index(after: trimmed.startIndex)..<close])
            let rest = trimmed[trimmed.index(after: close)...]
            if rest.isEmpty {
                port = Self.defaultPort
            } else {
                guard rest.hasPrefix(":"), let parsed = Int(rest.dropFirst()), (1...65535).contains(parsed) else { return nil }
                port = parsed
            }
        } else if trimmed.filter({ $0 == ":" }).count > 1 {
            host = trimmed  // a bare IPv6 address
            port = Self.defaultPort
        } else if let colon = trimmed.firstIndex(of: ":") {
            guard let parsed = Int(trimmed[trimmed.index(after: colon)...]), (1...65535).contains(parsed) else { return nil }
            host = String(trimmed[..<colon])
            port = parsed
        } else {
            host = trimmed
            port = Self.defaultPort
        }
        guard !host.isEmpty, host.utf8.count <= 253, host.utf8.allSatisfy(Self.inHost) else { return nil }
    }

    /// The bytes a host name or address holds.
    private static func inHost(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        case UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: ":"), UInt8(ascii: "%"): true
        default: false
        }
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Reads the standard talosconfig that `talosctl` writes:
/// `context`, `contexts.<name>.endpoints/nodes/ca/crt/key` (base64 PEM), and the deprecated
/// `target` (taken as the only node when `nodes` is absent).
public enum Talosconfig {
    /// Bounds on what one context may list: a control plane has a handful of endpoints, and
    /// a talosconfig (a tenant's Secret) must not make the operator parse without end, however
    /// many times YAML aliases repeat one entry.
    public static let maximumEndpoints = 64
    public static let maximumNodes = 1024

    /// The file as talosctl's `clientconfig` types describe it (fields this client reads).
    struct File: Decodable {
        var context: String?
        var contexts: [String: Context]?
    }

    struct Context: Decodable {
        var endpoints: [String]?
        var nodes: [String]?
        /// Deprecated single node.
        var target: String?
        /// Base64 PEM.
        var ca: String?
        var crt: String?
        var key: String?
    }

    /// Reads and parses the talosconfig file at `path` (a command's `--talosconfig`).
    public static func load(file path: String, context: String? = nil) throws -> TalosContext {
        let source = "talosconfig \(path)"
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigurationError(source: source, problem: "cannot be read (\(error.localizedDescription))")
        }
        return try parse(text, source: source, context: context)
    }

    /// Parses `text`; `source` names it in errors (a file path, or "Secret ns/name key k").
    /// Picks `context` when given, else the file's current `context`.
    public static func parse(_ text: String, source: String, context override: String? = nil) throws -> TalosContext {
        /// Text from the file as an error shows it: cut, so that a status stays readable.
        func shown(_ text: String, at limit: Int) -> String { text.count > limit ? "\(text.prefix(limit))..." : text }
        func fail(_ context: String?, _ field: String?, _ problem: String) -> ConfigurationError {
            ConfigurationError(source: source, context: context.map { shown($0, at: 253) }, field: field, problem: problem)
        }
        guard let file = try YAMLConfiguration.decode(File.self, from: text, source: source) else {
            throw fail(nil, nil, "is empty")
        }
        guard let contexts = file.contexts, !contexts.isEmpty else {
            throw fail(nil, "contexts", "required: the talosconfig has no contexts")
        }
        guard let name = override ?? file.context, !name.isEmpty else {
            throw fail(nil, "context", "not set and no context was given")
        }
        guard let context = contexts[name] else {
            let names = contexts.keys.sorted()
            let listed = names.prefix(10).map { shown($0, at: 64) }.joined(separator: ", ") + (names.count > 10 ? " and \(names.count - 10) more" : "")
            throw fail(name, nil, "no such context (the file has: \(listed))")
        }
        let rawEndpoints = context.endpoints ?? []
        guard !rawEndpoints.isEmpty else { throw fail(name, "endpoints", "empty: at least one control-plane endpoint is needed") }
        guard rawEndpoints.count <= maximumEndpoints else {
            throw fail(name, "endpoints", "\(rawEndpoints.count) endpoints; at most \(maximumEndpoints) are read")
        }
        var endpoints: [TalosEndpoint] = []
        for (index, raw) in rawEndpoints.enumerated() {
            guard let endpoint = TalosEndpoint(parsing: raw) else {
                throw fail(name, "endpoints[\(index)]", "\"\(shown(raw, at: 300))\" is not host, host:port or [ipv6]:port")
            }
            endpoints.append(endpoint)
        }
        var nodes = context.nodes ?? []
        guard nodes.count <= maximumNodes else { throw fail(name, "nodes", "\(nodes.count) nodes; at most \(maximumNodes) are read") }
        if nodes.isEmpty, let target = context.target, !target.isEmpty { nodes = [target] }

        func pem(_ field: String, labels: [String]) throws -> String {
            let value = switch field {
            case "ca": context.ca
            case "crt": context.crt
            default: context.key
            }
            guard let encoded = value, !encoded.isEmpty else { throw fail(name, field, "required") }
            guard let data = Data(base64Encoded: encoded.filter { !$0.isWhitespace }) else {
                throw fail(name, field, "is not valid base64")
            }
            let text = String(decoding: data, as: UTF8.self)
            guard labels.contains(where: { text.contains("-----BEGIN \($0)-----") }) else {
                throw fail(name, field, "does not hold a PEM \(labels.joined(separator: " or "))")
            }
            return text
        }
        let ca = try pem("ca", labels: ["CERTIFICATE"])
        let certificatePEM = try pem("crt", labels: ["CERTIFICATE"])
        var keyPEM = try pem("key", labels: ["ED25519 PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY"])
        // Talos writes PKCS#8 Ed25519 keys under a label of its own.
        keyPEM = keyPEM.replacingOccurrences(of: "ED25519 PRIVATE KEY", with: "PRIVATE KEY")

        do {
            let documents = try PEMDocument.parseMultiple(pemString: ca)
            guard !documents.isEmpty else { throw ConfigurationError(source: source, problem: "empty") }
            for document in documents { _ = try Certificate(pemDocument: document) }
        } catch {
            throw fail(name, "ca", "is not a valid PEM certificate")
        }
        let certificate: Certificate
        do {
            certificate = try Certificate(pemEncoded: certificatePEM)
        } catch {
            throw fail(name, "crt", "is not a valid PEM certificate")
        }
        let key: Certificate.PrivateKey
        do {
            key = try Certificate.PrivateKey(pemEncoded: keyPEM)
        } catch {
            throw fail(name, "key", "is not a valid PEM private key (Ed25519, ECDSA or RSA)")
        }
        guard key.publicKey == certificate.publicKey else {
            throw fail(name, "key", "does not match the certificate in crt")
        }
        return TalosContext(name: name, endpoints: endpoints, nodes: nodes, caPEM: ca, certificatePEM: certificatePEM, keyPEM: keyPEM)
    }
}
