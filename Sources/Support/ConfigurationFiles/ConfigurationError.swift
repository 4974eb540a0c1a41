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

extension ConfigurationError {
    /// A file whose YAML or JSON does not have the shape its type needs, with the field at
    /// fault as a path (`users[0].user.exec.args`) and what was wrong with it.
    public init(source: String, context: String? = nil, decoding error: DecodingError) {
        self.init(source: source, context: context, field: error.fieldPath, problem: error.problem)
    }
}

extension DecodingError {
    /// Where in the document: `status.conditions[0].lastTransitionTime`; nil at the top.
    public var fieldPath: String? {
        let path: [any CodingKey] = switch self {
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context): context.codingPath
        case .keyNotFound(let key, let context): context.codingPath + [key]
        @unknown default: []
        }
        let field = path.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().drop(while: { $0 == "." })
        return field.isEmpty ? nil : String(field)
    }

    /// What is wrong there: "must be a list", "required", or the decoder's own words.
    public var problem: String {
        switch self {
        case .typeMismatch(let type, _), .valueNotFound(let type, _): "must be \(Self.describe(type))"
        case .keyNotFound: "required"
        case .dataCorrupted(let context): context.debugDescription
        @unknown default: "\(self)"
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        let name = "\(type)"
        // Decoders name the expected container (JSONDecoder: Array; Yams: its Sequence node).
        if name.hasPrefix("Array") || name.contains("Unkeyed") || name.contains("Sequence") { return "a list" }
        if name.hasPrefix("Dictionary") || name.contains("Keyed") || name.contains("Mapping") { return "a mapping" }
        if name == "Bool" { return "true or false" }
        if name == "String" { return "a string" }
        if ["Int", "Int64", "Double"].contains(name) { return "a number" }
        return "a mapping"  // a struct: a YAML or JSON mapping
    }
}
