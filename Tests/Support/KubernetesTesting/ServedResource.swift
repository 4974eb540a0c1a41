import KubernetesClient

/// A resource type the test server serves: built in (namespaces, secrets, leases, events,
/// CRDs) or registered by creating a CustomResourceDefinition, with what discovery, OpenAPI,
/// validation and tables need to know about it.
struct ServedResource: Sendable {
    var type: ResourceType
    var singular: String
    var shortNames: [String] = []
    var categories: [String] = []
    /// Whether `/status` is a subresource (then the main endpoint ignores status changes and
    /// status writes leave the spec alone).
    var hasStatusSubresource = false
    /// openAPIV3Schema of a custom resource: used for defaulting, pruning, strict field
    /// validation and value validation.
    var schema: JSONValue?
    var printerColumns: [PrinterColumn] = []
    var verbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]

    struct PrinterColumn: Sendable {
        var name: String
        var type: String
        var jsonPath: String
        var description: String
    }

    var key: String { type.description }

    static let builtIn: [ServedResource] = [
        ServedResource(type: .namespaces, singular: "namespace", shortNames: ["ns"]),
        ServedResource(type: .secrets, singular: "secret"),
        ServedResource(type: ResourceType(group: "", version: "v1", plural: "configmaps", kind: "ConfigMap"), singular: "configmap", shortNames: ["cm"]),
        ServedResource(type: ResourceType(group: "", version: "v1", plural: "events", kind: "Event"), singular: "event", shortNames: ["ev"]),
        ServedResource(type: .leases, singular: "lease"),
        ServedResource(type: .events, singular: "event", shortNames: ["ev"]),
        ServedResource(type: .customResourceDefinitions, singular: "customresourcedefinition", shortNames: ["crd", "crds"], categories: ["api-extensions"]),
    ]

    /// The resource a CustomResourceDefinition object describes (its storage version).
    static func from(crd: JSONValue) -> ServedResource? {
        guard let spec = crd["spec"], case .string(let group)? = spec["group"],
              let names = spec["names"], case .string(let plural)? = names["plural"],
              case .string(let kind)? = names["kind"], case .array(let versions)? = spec["versions"]
        else { return nil }
        let version = versions.first { $0["storage"] == .bool(true) } ?? versions.first
        guard let version, case .string(let versionName)? = version["name"] else { return nil }
        var resource = ServedResource(
            type: ResourceType(group: group, version: versionName, plural: plural, kind: kind,
                               namespaced: spec["scope"] != .string("Cluster")),
            singular: names["singular"]?.stringValue ?? kind.lowercased())
        resource.shortNames = names["shortNames"]?.stringArray ?? []
        resource.categories = names["categories"]?.stringArray ?? []
        resource.hasStatusSubresource = version["subresources"]?["status"] != nil
        resource.schema = version["schema"]?["openAPIV3Schema"]
        if case .array(let columns)? = version["additionalPrinterColumns"] {
            resource.printerColumns = columns.compactMap { column in
                guard let name = column["name"]?.stringValue, let path = column["jsonPath"]?.stringValue else { return nil }
                return PrinterColumn(name: name, type: column["type"]?.stringValue ?? "string", jsonPath: path,
                                     description: column["description"]?.stringValue ?? "")
            }
        }
        return resource
    }
}

extension JSONValue {
    /// The value at a dotted path such as `metadata.name` or `.spec.schedule`.
    func value(at path: String) -> JSONValue? {
        var current: JSONValue? = self
        for component in path.split(separator: ".") {
            current = current?[String(component)]
        }
        return current
    }

    /// Sets the value at a path of object keys, creating objects along the way.
    mutating func set(_ value: JSONValue?, at path: [String]) {
        guard let first = path.first else {
            if let value { self = value }
            return
        }
        var members = objectValue ?? [:]
        if path.count == 1 {
            members[first] = value
        } else {
            var child = members[first] ?? .object([:])
            child.set(value, at: Array(path.dropFirst()))
            members[first] = child
        }
        self = .object(members)
    }
}
