/// A configuration file that cannot be used (a kubeconfig, the in-cluster configuration, a
/// talosconfig), naming the file (or Secret key), the context and the field at fault, so the
/// message says what to fix: `kubeconfig /root/.kube/config, context "prod",
/// users[admin].client-key-data: is not valid base64`.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible, Equatable {
    public var source: String
    public var context: String?
    public var field: String?
    public var problem: String

    public init(source: String, context: String? = nil, field: String? = nil, problem: String) {
        self.source = source
        self.context = context
        self.field = field
        self.problem = problem
    }

    public var description: String {
        var text = source
        if let context { text += ", context \"\(context)\"" }
        if let field { text += ", \(field)" }
        return text + ": " + problem
    }
}
