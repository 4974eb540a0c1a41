import ConfigurationFiles
import Foundation
import KubernetesCore

/// A Secret as the manifest stored beside a snapshot: what `kubectl apply -f` takes back into a
/// new management cluster, with the metadata reduced to name, namespace and labels (no uid,
/// resourceVersion, owner references or managed fields), its type and its data, as
/// talos-operator writes its state files. YAML in its JSON-compatible form: every scalar a
/// double-quoted JSON string, keys sorted, so it reads back exactly whatever the key names
/// hold. It carries the cluster's secrets: it is encoded (and encrypted when the backup is)
/// before it is stored, and never logged.
public enum StateManifest {
    /// The manifest of `secret`.
    public static func yaml(_ secret: Secret) -> [UInt8] {
        var lines = ["apiVersion: v1", "kind: Secret", "metadata:", "  name: \(quoted(secret.name))", "  namespace: \(quoted(secret.namespace))"]
        if !secret.labels.isEmpty {
            lines.append("  labels:")
            for (key, value) in secret.labels.sorted(by: { $0.key < $1.key }) { lines.append("    \(quoted(key)): \(quoted(value))") }
        }
        lines.append("type: \(quoted(secret.type))")
        if secret.data.isEmpty {
            lines.append("data: {}")
        } else {
            lines.append("data:")
            for (key, value) in secret.data.sorted(by: { $0.key < $1.key }) {
                lines.append("  \(quoted(key)): \(quoted(Data(value).base64EncodedString()))")
            }
        }
        return Array((lines.joined(separator: "\n") + "\n").utf8)
    }

    /// A JSON string literal, which YAML reads as the same double-quoted scalar.
    private static func quoted(_ text: String) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return (try? String(decoding: encoder.encode(text), as: UTF8.self)) ?? "\"\""
    }
}

extension StateManifest {
    /// The Secret a manifest describes: what is stored of the control plane's state Secret, and
    /// what a stored manifest reads back as (checked: apiVersion `v1`, kind `Secret`, a name and
    /// namespace, base64 data), ready to be applied to a new management cluster. Its data is
    /// the cluster's secrets: never logged or printed.
    public struct Secret: Sendable, Equatable {
        public var name: String
        public var namespace: String
        public var labels: [String: String]
        public var type: String
        public var data: [String: [UInt8]]

        public init(name: String, namespace: String, labels: [String: String], type: String, data: [String: [UInt8]]) {
            self.name = name
            self.namespace = namespace
            self.labels = labels
            self.type = type
            self.data = data
        }

        /// The Secret as the API server takes it.
        public var object: JSONValue {
            var metadata: [String: JSONValue] = ["name": .string(name), "namespace": .string(namespace)]
            if !labels.isEmpty { metadata["labels"] = .object(labels.mapValues { .string($0) }) }
            return ["apiVersion": "v1", "kind": "Secret", "metadata": .object(metadata), "type": .string(type),
                    "data": .object(data.mapValues { .string(Data($0).base64EncodedString()) })]
        }
    }

    /// What applying it to a cluster did.
    public enum Applied: String, Sendable, Equatable {
        case created, replaced, unchanged
    }

    /// The Secret in a stored manifest (`source` names it in errors, which never quote it).
    public static func parse(_ manifest: [UInt8], source: String) throws -> Secret {
        struct Document: Decodable {
            struct Metadata: Decodable {
                var name: String?
                var namespace: String?
                var labels: [String: String]?
            }
            var apiVersion: String?
            var kind: String?
            var metadata: Metadata?
            var type: String?
            var data: [String: String]?
        }
        guard let text = String(validating: manifest, as: UTF8.self) else {
            throw StateManifestInvalid(source: source, problem: "is not UTF-8 text")
        }
        // Errors name the position and the problem, never the text (ConfigurationError).
        guard let document = try YAMLConfiguration.decode(Document.self, from: text, source: source) else {
            throw StateManifestInvalid(source: source, problem: "is empty")
        }
        guard document.apiVersion == "v1", document.kind == "Secret" else {
            func shown(_ value: String?) -> String {
                guard let value else { return "none" }
                let plain = value.utf8.count <= 40 && value.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "./-".contains($0)) }
                return plain ? "\"\(value)\"" : "an unexpected value"
            }
            throw StateManifestInvalid(source: source, problem: "is not a v1 Secret (apiVersion \(shown(document.apiVersion)), kind \(shown(document.kind)))")
        }
        guard let name = document.metadata?.name, !name.isEmpty, let namespace = document.metadata?.namespace, !namespace.isEmpty else {
            throw StateManifestInvalid(source: source, problem: "has no metadata.name or metadata.namespace")
        }
        // Names as Kubernetes takes them (DNS subdomain, DNS label): nothing else is printed.
        func dnsName(_ text: String, limit: Int, dots: Bool) -> Bool {
            text.utf8.count <= limit && text.utf8.allSatisfy { (0x61...0x7a).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2d || (dots && $0 == 0x2e) }
        }
        guard dnsName(name, limit: 253, dots: true), dnsName(namespace, limit: 63, dots: false) else {
            throw StateManifestInvalid(source: source, problem: "has a metadata.name or metadata.namespace that is not a Kubernetes name (lowercase letters, digits, '-' and, in a name, '.')")
        }
        var data: [String: [UInt8]] = [:]
        for (key, value) in document.data ?? [:] {
            guard let bytes = Data(base64Encoded: value) else {
                // Only a key shaped as Kubernetes allows is named: nothing else of the input is echoed.
                let named = key.utf8.count <= 253 && !key.isEmpty && key.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-._".contains($0)) }
                throw StateManifestInvalid(source: source, problem: named ? "data key \"\(key)\" is not base64" : "has a data value that is not base64 (under a key Kubernetes would not accept)")
            }
            data[key] = Array(bytes)
        }
        return Secret(name: name, namespace: namespace, labels: document.metadata?.labels ?? [:], type: document.type ?? "Opaque", data: data)
    }
}

/// A stored state manifest that is not the Secret the operator stored: not YAML, not a v1
/// Secret, no name or namespace, data that is not base64. Names where, never quotes it.
public struct StateManifestInvalid: Error, Sendable, CustomStringConvertible {
    public var source: String
    public var problem: String
    public init(source: String, problem: String) {
        self.source = source
        self.problem = problem
    }
    public var description: String { "\(source) \(problem)" }
}
