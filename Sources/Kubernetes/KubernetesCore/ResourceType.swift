/// Identifies a Kubernetes resource type for REST paths: group, version, plural, and whether
/// objects live in namespaces.
public struct ResourceType: Sendable, Hashable, CustomStringConvertible {
    public var group: String
    public var version: String
    public var plural: String
    public var kind: String
    public var namespaced: Bool

    public init(group: String, version: String, plural: String, kind: String, namespaced: Bool = true) {
        self.group = group
        self.version = version
        self.plural = plural
        self.kind = kind
        self.namespaced = namespaced
    }

    /// `v1` for the core group, else `group/version`.
    public var apiVersion: String { group.isEmpty ? version : "\(group)/\(version)" }

    public var description: String { group.isEmpty ? plural : "\(plural).\(group)" }

    /// `/api/v1/namespaces/ns/secrets/name/status` and friends.
    public func path(namespace: String? = nil, name: String? = nil, subresource: String? = nil) -> String {
        var path = group.isEmpty ? "/api/\(version)" : "/apis/\(group)/\(version)"
        if namespaced, let namespace { path += "/namespaces/\(Self.escape(namespace))" }
        path += "/\(plural)"
        if let name { path += "/\(Self.escape(name))" }
        if let subresource { path += "/\(subresource)" }
        return path
    }

    private static func escape(_ segment: String) -> String {
        segment.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? segment
    }

    public static let secrets = ResourceType(group: "", version: "v1", plural: "secrets", kind: "Secret")
    public static let namespaces = ResourceType(group: "", version: "v1", plural: "namespaces", kind: "Namespace", namespaced: false)
    public static let leases = ResourceType(group: "coordination.k8s.io", version: "v1", plural: "leases", kind: "Lease")
    public static let events = ResourceType(group: "events.k8s.io", version: "v1", plural: "events", kind: "Event")
    public static let customResourceDefinitions = ResourceType(
        group: "apiextensions.k8s.io", version: "v1", plural: "customresourcedefinitions",
        kind: "CustomResourceDefinition", namespaced: false)
}

import Foundation
