@_exported import KubernetesCore  // the objects the client reads and writes are part of its API
import Foundation

/// The Kubernetes API as the controllers use it: typed get, list, create, update, status
/// update, merge patch, delete and watch. ``KubernetesClient`` implements it over HTTP; the
/// in-memory fake of the test-support library `KubernetesTestServer` implements it over the
/// same object store the test server serves, so reconcilers' decisions are tested without a
/// network (as controller-runtime's fake client and kube-rs' mock service allow).
///
/// Failures are ``KubernetesError`` (the server answered) or ``KubernetesConnectionError`` (it
/// did not), from either implementation.
public protocol KubernetesAPI: Sendable {
    func get<T: Decodable>(_ type: T.Type, _ resource: ResourceType, namespace: String?, name: String) async throws -> T

    /// One page of a list. `resourceVersion` of the result is where a watch should start.
    func list<T: Decodable & Sendable>(_ type: T.Type, _ resource: ResourceType, namespace: String?, options: ListOptions) async throws -> ObjectList<T>

    func create<T: Codable>(_ object: T, _ resource: ResourceType, namespace: String?) async throws -> T

    /// Replaces the object; a conflict when `metadata.resourceVersion` is stale.
    func update<T: Codable>(_ object: T, _ resource: ResourceType, namespace: String?, name: String) async throws -> T

    /// Replaces only the status, through the `/status` subresource.
    func updateStatus<T: Codable>(_ object: T, _ resource: ResourceType, namespace: String?, name: String) async throws -> T

    /// JSON merge patch (RFC 7386), of the object or of a subresource such as `status`.
    func patch<T: Decodable>(_ type: T.Type, _ resource: ResourceType, namespace: String?, name: String, mergePatch: JSONValue,
                             subresource: String?) async throws -> T

    /// With finalizers the object stays, with a `deletionTimestamp`, until they are removed.
    func delete(_ resource: ResourceType, namespace: String?, name: String, options: DeleteOptions) async throws

    /// Events as the server sends them, until it ends the watch (`timeoutSeconds`) or the
    /// consumer stops iterating.
    func watch<T: Decodable & Sendable>(_ type: T.Type, _ resource: ResourceType, namespace: String?, options: WatchOptions) async throws -> WatchStream<T>
}

extension KubernetesAPI {
    /// Every page of a list, following `continue` tokens.
    public func listAll<T: Decodable & Sendable>(
        _ type: T.Type, _ resource: ResourceType, namespace: String? = nil, options: ListOptions = ListOptions()
    ) async throws -> ObjectList<T> {
        var options = options
        var page = try await list(type, resource, namespace: namespace, options: options)
        var items = page.items
        var undecodable = page.undecodable
        while let token = page.metadata.continue, !token.isEmpty {
            options.continueToken = token
            page = try await list(type, resource, namespace: namespace, options: options)
            items += page.items
            undecodable += page.undecodable
        }
        return ObjectList(metadata: page.metadata, items: items, undecodable: undecodable)
    }

    // The requirements with their usual arguments left out.

    public func get<T: Decodable>(_ type: T.Type, _ resource: ResourceType, name: String) async throws -> T {
        try await get(type, resource, namespace: nil, name: name)
    }

    public func list<T: Decodable & Sendable>(_ type: T.Type, _ resource: ResourceType, namespace: String? = nil) async throws -> ObjectList<T> {
        try await list(type, resource, namespace: namespace, options: ListOptions())
    }

    public func create<T: Codable>(_ object: T, _ resource: ResourceType) async throws -> T {
        try await create(object, resource, namespace: nil)
    }

    public func update<T: Codable>(_ object: T, _ resource: ResourceType, name: String) async throws -> T {
        try await update(object, resource, namespace: nil, name: name)
    }

    public func patch<T: Decodable>(_ type: T.Type, _ resource: ResourceType, namespace: String? = nil, name: String,
                                    mergePatch: JSONValue) async throws -> T {
        try await patch(type, resource, namespace: namespace, name: name, mergePatch: mergePatch, subresource: nil)
    }

    public func delete(_ resource: ResourceType, namespace: String? = nil, name: String) async throws {
        try await delete(resource, namespace: namespace, name: name, options: DeleteOptions())
    }

    public func watch<T: Decodable & Sendable>(_ type: T.Type, _ resource: ResourceType, namespace: String? = nil) async throws -> WatchStream<T> {
        try await watch(type, resource, namespace: namespace, options: WatchOptions())
    }
}
