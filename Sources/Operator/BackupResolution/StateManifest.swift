import Foundation

/// A Secret as the manifest stored beside a snapshot: what `kubectl apply -f` takes back into a
/// new management cluster, with the metadata reduced to name, namespace and labels (no uid,
/// resourceVersion, owner references or managed fields), its type and its data, as
/// talos-operator writes its state files. YAML in its JSON-compatible form: every scalar a
/// double-quoted JSON string, keys sorted, so it reads back exactly whatever the key names
/// hold. It carries the cluster's secrets: it is encoded (and encrypted when the backup is)
/// before it is stored, and never logged.
public enum StateManifest {
    public static func yaml(name: String, namespace: String, secret: SecretContents) -> [UInt8] {
        var lines = ["apiVersion: v1", "kind: Secret", "metadata:", "  name: \(quoted(name))", "  namespace: \(quoted(namespace))"]
        if !secret.labels.isEmpty {
            lines.append("  labels:")
            for (key, value) in secret.labels.sorted(by: { $0.key < $1.key }) { lines.append("    \(quoted(key)): \(quoted(value))") }
        }
        lines.append("type: \(quoted(secret.type ?? "Opaque"))")
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
