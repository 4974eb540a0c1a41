import Foundation
import Timestamps

/// Any Kubernetes object the client and controller runtime handle generically: it has
/// metadata, and it knows its resource type.
public protocol KubernetesObject: Codable, Sendable {
    static var resourceType: ResourceType { get }
    var metadata: ObjectMeta { get set }
}

extension KubernetesObject {
    /// `namespace/name` of this object.
    public var key: ObjectKey { ObjectKey(namespace: metadata.namespace, name: metadata.name ?? "") }
}

/// Names one object: namespace (nil for cluster-scoped) and name. The unit of work of a
/// controller's queue.
public struct ObjectKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var namespace: String?
    public var name: String

    public init(namespace: String?, name: String) {
        self.namespace = namespace
        self.name = name
    }

    public var description: String { namespace.map { "\($0)/\(name)" } ?? name }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.namespace ?? "", lhs.name) < (rhs.namespace ?? "", rhs.name)
    }
}

/// A Kubernetes `metav1.MicroTime` (Lease renew times, Event times): RFC 3339 with
/// microseconds.
public struct MicroTime: Codable, Sendable, Hashable, Comparable, CustomStringConvertible {
    public var date: Date

    public init(_ date: Date) { self.date = date }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let date = RFC3339.parse(text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "\"\(text)\" is not an RFC 3339 timestamp")
        }
        self.date = date
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    public var description: String { RFC3339.format(date, fractionDigits: 6) }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.date < rhs.date }
}

/// An object of any kind, with its metadata decoded and everything else kept as JSON: for
/// tools and tests that handle kinds the project has no Swift type for.
public struct GenericObject: Codable, Sendable, Equatable {
    public var metadata: ObjectMeta
    public var raw: JSONValue

    public init(raw: JSONValue) throws {
        self.raw = raw
        self.metadata = try JSONDecoder().decode(ObjectMeta.self, from: JSONEncoder().encode(raw["metadata"] ?? [:]))
    }

    public init(from decoder: any Decoder) throws {
        try self.init(raw: JSONValue(from: decoder))
    }

    public func encode(to encoder: any Encoder) throws {
        var raw = self.raw
        if case .object(var members) = raw {
            members["metadata"] = try JSONValue(encoding: metadata)
            raw = .object(members)
        }
        try raw.encode(to: encoder)
    }

    public subscript(key: String) -> JSONValue? { raw[key] }
}
