import KubernetesCore
import Yams

/// Writes a ``JSONValue`` as block-style YAML with sorted keys (as `kubectl get -o yaml` does),
/// through Yams, which quotes every string a YAML reader could take for anything else.
public enum YAML {
    public static func render(_ value: JSONValue) throws -> String {
        let encoder = YAMLEncoder()
        encoder.options.sortKeys = true
        encoder.options.indent = 2
        encoder.options.width = -1  // no folding of long descriptions
        return try encoder.encode(value)
    }
}
