import ConfigurationFiles
/// Kubernetes `metav1.Status`: what the API server answers on failure (and on some deletes).
public struct Status: Codable, Sendable, Equatable {
    public var kind: String?
    public var apiVersion: String?
    public var status: String?
    public var message: String?
    public var reason: String?
    public var details: StatusDetails?
    public var code: Int?

    public init(status: String? = "Failure", message: String?, reason: String?, details: StatusDetails? = nil, code: Int?) {
        self.kind = "Status"
        self.apiVersion = "v1"
        self.status = status
        self.message = message
        self.reason = reason
        self.details = details
        self.code = code
    }
}

/// `metav1.StatusDetails`: which object a failure concerns, and per-field causes.
public struct StatusDetails: Codable, Sendable, Equatable {
    public var name: String?
    public var group: String?
    public var kind: String?
    public var causes: [StatusCause]?
    public var retryAfterSeconds: Int?

    public init(name: String? = nil, group: String? = nil, kind: String? = nil, causes: [StatusCause]? = nil) {
        self.name = name
        self.group = group
        self.kind = kind
        self.causes = causes
    }
}

/// `metav1.StatusCause`: one reason a request failed, for example one invalid field.
public struct StatusCause: Codable, Sendable, Equatable {
    public var reason: String?
    public var message: String?
    public var field: String?

    public init(reason: String?, message: String?, field: String?) {
        self.reason = reason
        self.message = message
        self.field = field
    }
}

/// `metav1.ListMeta`: where a list stands (its resourceVersion) and how to get the next page.
public struct ListMeta: Codable, Sendable, Equatable {
    public var resourceVersion: String?
    public var `continue`: String?
    public var remainingItemCount: Int64?

    public init(resourceVersion: String? = nil, continue: String? = nil) {
        self.resourceVersion = resourceVersion
        self.continue = `continue`
    }
}

/// A list response: `{"kind": "...List", "metadata": {...}, "items": [...]}`.
///
/// One item that does not decode as `Item` does not fail the list: it lands in
/// ``undecodable`` with what could be read of it, so a controller goes on with the rest.
public struct ObjectList<Item: Decodable & Sendable>: Decodable, Sendable {
    public var metadata: ListMeta
    public var items: [Item]
    public var undecodable: [UndecodableObject]

    public init(metadata: ListMeta, items: [Item], undecodable: [UndecodableObject] = []) {
        self.metadata = metadata
        self.items = items
        self.undecodable = undecodable
    }

    private enum CodingKeys: String, CodingKey { case metadata, items }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        metadata = try container.decodeIfPresent(ListMeta.self, forKey: .metadata) ?? ListMeta()
        let decoded = try container.decodeIfPresent([Lossy<Item>].self, forKey: .items) ?? []
        items = decoded.compactMap(\.value)
        undecodable = decoded.compactMap(\.failure)
    }
}

/// An object the API server sent that this program's types cannot read: its identity (as far
/// as it can be read) and why, for a log line and a metric.
public struct UndecodableObject: Sendable, Equatable, CustomStringConvertible {
    public var namespace: String?
    public var name: String?
    public var resourceVersion: String?
    public var error: String

    public init(namespace: String? = nil, name: String? = nil, resourceVersion: String? = nil, error: String) {
        self.namespace = namespace
        self.name = name
        self.resourceVersion = resourceVersion
        self.error = error
    }

    public var description: String {
        "\(namespace.map { "\($0)/" } ?? "")\(name ?? "(unnamed)") at resourceVersion \(resourceVersion ?? "?"): \(error)"
    }
}

/// Decodes `Value`, or keeps the object's metadata and the error when that fails.
package struct Lossy<Value: Decodable>: Decodable {
    package var value: Value?
    package var failure: UndecodableObject?

    private struct MetadataOnly: Decodable {
        struct Meta: Decodable { var name: String?; var namespace: String?; var resourceVersion: String? }
        var metadata: Meta?
    }

    package init(from decoder: any Decoder) throws {
        do {
            value = try Value(from: decoder)
        } catch {
            let meta = (try? MetadataOnly(from: decoder))?.metadata
            failure = UndecodableObject(namespace: meta?.namespace, name: meta?.name, resourceVersion: meta?.resourceVersion,
                                        error: Self.describe(error))
        }
    }

    /// Where in the object and what: "status.startTime: ... is not an RFC 3339 timestamp".
    static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "\(error)" }
        return error.fieldPath.map { "\($0): \(error.problem)" } ?? error.problem
    }
}
