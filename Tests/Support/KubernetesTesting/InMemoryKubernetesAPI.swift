import Foundation
import KubernetesClient

/// The Kubernetes API in memory: ``KubernetesAPI`` over the object store the test server
/// serves (optimistic concurrency, generation, the status subresource, finalizers and
/// deletion, garbage collection, namespaces, selectors, paginated lists, resumable watches with
/// bookmarks and 410 Gone), without HTTP. Reconcilers tested against it run in milliseconds.
///
/// Objects go through JSON both ways, as over the wire: what the types cannot carry is lost,
/// and what the server rejects (an unknown field, a schema violation) is an error. Faults are
/// the test server's: ``failNextRequests(_:code:method:pathContains:)`` answers matching
/// requests with an error status, as the server would. Unlike ``KubernetesClient``, nothing is
/// retried, so a test sees every fault at the reconciler.
public final class InMemoryKubernetesAPI: KubernetesAPI {
    let store: ObjectStore
    private let faults = Faults()
    private let bookmarkInterval: Duration

    /// `watchHistory` events per kind are kept for watches to resume from (older: 410 Gone).
    public init(watchHistory: Int = 10_000, bookmarkInterval: Duration = .seconds(1)) {
        store = ObjectStore(logCapacity: watchHistory)
        self.bookmarkInterval = bookmarkInterval
    }

    // MARK: Faults and observations

    /// Answers the next `count` requests that match with `code`.
    public func failNextRequests(_ count: Int, code: Int, method: String? = nil, pathContains: String? = nil) async {
        await faults.failNext(count, code: code, method: method, pathContains: pathContains, retryAfterSeconds: nil)
    }

    /// Holds matching requests for `delay` before answering them.
    public func delayRequests(_ delay: Duration, method: String? = nil, pathContains: String) async {
        await faults.delay(delay, method: method, pathContains: pathContains)
    }

    /// Holds requests whose path contains `pathContains` (ends with it, when it ends in `$`; of
    /// `method`, when given) unanswered
    /// until ``releaseRequests(method:pathContains:)``.
    public func holdRequests(method: String? = nil, pathContains: String) async {
        await faults.hold(method: method, pathContains: pathContains)
    }

    /// Answers the requests ``holdRequests(method:pathContains:)`` held, and those after them.
    public func releaseRequests(method: String? = nil, pathContains: String) async {
        await faults.release(method: method, pathContains: pathContains)
    }

    /// Ends every open watch abruptly.
    public func dropWatches() async { await store.dropWatches() }

    /// Forgets watch history: a watch from any older resourceVersion gets 410 Gone.
    public func expireResourceVersions() async { await store.expireResourceVersions() }

    public var openWatchCount: Int { get async { await store.openWatchCount } }

    // MARK: KubernetesAPI

    public func get<T: Decodable>(_ type: T.Type, _ resource: ResourceType, namespace: String?, name: String) async throws -> T {
        try await perform("GET", resource, namespace: namespace, name: name) { served in
            try Self.decode(type, try await self.store.get(served, namespace: namespace, name: name))
        }
    }

    public func list<T: Decodable & Sendable>(_ type: T.Type, _ resource: ResourceType, namespace: String?, options: ListOptions) async throws -> ObjectList<T> {
        try await perform("GET", resource, namespace: namespace) { served in
            let result = try await self.store.list(
                served, namespace: namespace, labels: try Selector(parsing: options.labelSelector),
                fields: try Selector(parsing: options.fieldSelector), limit: options.limit, continueToken: options.continueToken)
            return try Self.decode(ObjectList<T>.self, result.json(of: served))
        }
    }

    public func create<T: Codable>(_ object: T, _ resource: ResourceType, namespace: String?) async throws -> T {
        try await perform("POST", resource, namespace: namespace) { served in
            try Self.decode(T.self, try await self.store.create(served, namespace: namespace, try JSONValue(encoding: object)))
        }
    }

    public func update<T: Codable>(_ object: T, _ resource: ResourceType, namespace: String?, name: String) async throws -> T {
        try await perform("PUT", resource, namespace: namespace, name: name) { served in
            try Self.decode(T.self, try await self.store.update(served, namespace: namespace, name: name, try JSONValue(encoding: object), subresource: nil))
        }
    }

    public func updateStatus<T: Codable>(_ object: T, _ resource: ResourceType, namespace: String?, name: String) async throws -> T {
        try await perform("PUT", resource, namespace: namespace, name: name, subresource: "status") { served in
            guard served.hasStatusSubresource else { throw APIError.methodNotAllowed }
            return try Self.decode(T.self, try await self.store.update(
                served, namespace: namespace, name: name, try JSONValue(encoding: object), subresource: "status"))
        }
    }

    public func patch<T: Decodable>(_ type: T.Type, _ resource: ResourceType, namespace: String?, name: String, mergePatch: JSONValue,
                                    subresource: String?) async throws -> T {
        try await perform("PATCH", resource, namespace: namespace, name: name, subresource: subresource) { served in
            guard subresource == nil || (subresource == "status" && served.hasStatusSubresource) else { throw APIError.methodNotAllowed }
            return try Self.decode(type, try await self.store.patch(
                served, namespace: namespace, name: name, mergePatch, type: .merge, subresource: subresource))
        }
    }

    public func delete(_ resource: ResourceType, namespace: String?, name: String, options: DeleteOptions) async throws {
        try await perform("DELETE", resource, namespace: namespace, name: name) { served in
            _ = try await self.store.delete(served, namespace: namespace, name: name, options: options.json())
        }
    }

    public func watch<T: Decodable & Sendable>(_ type: T.Type, _ resource: ResourceType, namespace: String?, options: WatchOptions) async throws -> WatchStream<T> {
        let (store, interval) = (self.store, bookmarkInterval)
        let (id, initial, messages) = try await perform("GET", resource, namespace: namespace) { served in
            try await store.watch(served, namespace: namespace, labels: try Selector(parsing: options.labelSelector),
                                  fields: try Selector(parsing: options.fieldSelector), from: options.resourceVersion)
        }
        let duration = Duration.seconds(options.timeoutSeconds ?? 1800)
        let (chunks, continuation) = AsyncThrowingStream<[UInt8], any Error>.makeStream()
        // Writes the watch's lines as the server's watch handler does; owned by the stream: a
        // consumer that stops iterating cancels it, and it ends the watch in the store.
        let writer = Task {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    try? await Task.sleep(for: duration)
                    await store.stopWatch(id)
                }
                if options.allowWatchBookmarks {
                    group.addTask {
                        while (try? await Task.sleep(for: interval)) != nil { await store.bookmark(id) }
                    }
                }
                func send(_ message: ObjectStore.WatchMessage) async -> Bool {
                    guard let (line, ends) = try? message.line(asTableOf: nil) else { return false }
                    continuation.yield(line)
                    if ends { await store.stopWatch(id) }
                    return !ends
                }
                var open = true
                for message in initial where open { open = await send(message) }
                if open { for await message in messages { if !(await send(message)) { break } } }
                group.cancelAll()
            }
            await store.stopWatch(id)
            continuation.finish()
        }
        continuation.onTermination = { _ in writer.cancel() }
        return WatchStream(chunks: chunks)
    }

    // MARK: Plumbing

    /// Runs one request against the store: the faults first, then `body`, whose test-server
    /// errors become the ``KubernetesError`` the client would have thrown.
    private func perform<R>(_ method: String, _ resource: ResourceType, namespace: String?, name: String? = nil, subresource: String? = nil,
                                      _ body: (ServedResource) async throws -> R) async throws -> R {
        let path = resource.path(namespace: namespace, name: name, subresource: subresource)
        let request = "\(method) \(path)"
        let latency = await faults.latency(method: method, path: path)
        if latency > .zero { try await Task.sleep(for: latency) }
        try await faults.waitWhileHeld(method: method, path: path)
        do {
            if let failure = await faults.take(method: method, path: path) {
                throw APIError(code: failure.code, reason: failure.code == 429 ? "TooManyRequests" : "InternalError",
                               message: "injected failure \(failure.code)")
            }
            guard let served = await store.resource(group: resource.group, version: resource.version, plural: resource.plural) else {
                throw APIError(code: 404, reason: "NotFound", message: "the server could not find the requested resource")
            }
            return try await body(served)
        } catch let error as APIError {
            throw KubernetesError(code: error.code, status: error.status, request: request)
        }
    }

    private static func decode<T: Decodable>(_ type: T.Type, _ value: JSONValue) throws -> T {
        try JSONDecoder().decode(type, from: JSONEncoder().encode(value))
    }
}

extension APIError {
    static var methodNotAllowed: APIError {
        APIError(code: 405, reason: "MethodNotAllowed", message: "the server does not allow this method on the requested resource")
    }
}
