import Foundation
import KubernetesClient
import Logging
import Waiting
import Synchronization

/// A change an informer saw.
public enum InformerEvent<Object: KubernetesObject>: Sendable {
    case added(Object)
    case updated(old: Object, new: Object)
    case deleted(Object)

    public var object: Object {
        switch self {
        case .added(let object), .deleted(let object): object
        case .updated(_, let new): new
        }
    }
}

/// Keeps an ``ObjectCache`` in step with the API server and tells any number of handlers of
/// each change (kube-rs' watcher -> reflector -> streams; controller-runtime's shared cache):
/// one informer per kind serves every controller that reads that kind. It lists, then watches from the list's
/// resourceVersion (with bookmarks); when the watch breaks it resumes from the last version
/// seen, and on 410 Gone it lists again and delivers the difference, deletions that happened
/// while disconnected included. Errors back off exponentially (up to 30 s).
///
/// Nothing stops it for good:
/// - an object this program's types cannot read is logged, counted (``undecodableObjects``)
///   and skipped; the rest of the list or watch goes on (a cached older version of it stays);
/// - a watch that sends nothing, not even a bookmark, for `watchTimeoutSeconds` plus
///   ``idleGrace`` is abandoned and resumed (a proxy or load balancer that stopped forwarding
///   without closing the connection);
/// - a watch that ends at once without an event counts as a failure and backs off, as
///   client-go's "very short watch" does, instead of reconnecting in a hot loop.
///
/// What it caches and delivers has no `metadata.managedFields` (controller-runtime's
/// `TransformStripManagedFields`): on a real API server every object carries them, often more
/// bytes than the rest of it, and nothing here reads them. A write of a cached object leaves
/// them as they are, since the API server keeps an object's managedFields when an update omits
/// them.
public final class Informer<Object: KubernetesObject>: Sendable {
    public let cache = ObjectCache<Object>()
    private let client: any KubernetesAPI
    private let namespace: String?
    private let labelSelector: String?
    private let watchTimeoutSeconds: Int
    /// How long past its server-side timeout a silent watch is given before it is abandoned.
    public let idleGrace: Duration
    private let logger: Logger
    private let undecodable = Atomic<Int>(0)
    private let synced = Latch()
    private let handlers = Mutex<(next: Int, all: [Int: Handler])>((0, [:]))

    /// Receives every change to the cache, in order, on the informer's task; while
    /// ``addHandler(_:)`` replays the cache it may also be called from the adding task at the
    /// same time. It must be quick and thread-safe (a controller's adds a key to its work queue).
    public typealias Handler = @Sendable (InformerEvent<Object>) -> Void

    /// `watchTimeoutSeconds` is the server-side length of one watch; with `idleGrace` it bounds
    /// how long a silently dead connection goes unnoticed (by default 30 s + 15 s, so a change
    /// made behind a dead connection is seen within a minute).
    public init(client: any KubernetesAPI, namespace: String? = nil, labelSelector: String? = nil, watchTimeoutSeconds: Int = 30,
                idleGrace: Duration = .seconds(15), logger: Logger = Logger(label: "informer")) {
        self.client = client
        self.namespace = namespace
        self.labelSelector = labelSelector
        self.watchTimeoutSeconds = watchTimeoutSeconds
        self.idleGrace = idleGrace
        var logger = logger
        logger[metadataKey: "resource"] = "\(Object.resourceType)"
        self.logger = logger
    }

    /// Objects skipped so far because they could not be decoded.
    public var undecodableObjects: Int { undecodable.load(ordering: .relaxed) }

    /// Whether the first list has been stored.
    public var hasSynced: Bool { synced.isOpen }

    /// Returns once the first list has been stored, or when the calling task is cancelled.
    public func waitForSync() async {
        await synced.wait()
    }

    /// Registers `handler` for every later change, and replays the cache to it as additions, so
    /// a subscriber that arrives late (a controller that starts when leadership is won) sees
    /// every object once. Keep the returned token to ``removeHandler(_:)``.
    @discardableResult
    public func addHandler(_ handler: @escaping Handler) -> HandlerRegistration {
        let id = handlers.withLock { handlers in
            defer { handlers.next += 1 }
            handlers.all[handlers.next] = handler
            return handlers.next
        }
        for object in cache.list() { handler(.added(object)) }
        return HandlerRegistration(id: id)
    }

    public func removeHandler(_ registration: HandlerRegistration) {
        handlers.withLock { _ = $0.all.removeValue(forKey: registration.id) }
    }

    /// Identifies a handler added with ``addHandler(_:)``.
    public struct HandlerRegistration: Sendable, Hashable {
        let id: Int
    }

    private func deliver(_ event: InformerEvent<Object>) {
        for handler in handlers.withLock({ Array($0.all.values) }) { handler(event) }
    }

    /// Runs until cancelled, keeping the cache in step and telling every handler of each change.
    public func run() async throws {
        var failures = 0
        var version: String?
        while !Task.isCancelled {
            do {
                if version == nil {
                    version = try await relist()  // failures reset only by a watch that worked
                }
                let started = ContinuousClock.now
                let outcome = try await watch(from: version!)
                version = outcome.version
                if outcome.events == 0, ContinuousClock.now - started < .seconds(1) {
                    throw VeryShortWatch()
                }
                failures = 0
            } catch let error as KubernetesError where error.isGone {
                logger.info("watch history expired; listing again", metadata: ["error": "\(error.message)"])
                version = nil
            } catch is CancellationError {
                return
            } catch {
                if Task.isCancelled { return }
                failures += 1
                let delay = Self.retryBackoff.delay(retry: failures)
                logger.warning("list/watch failed; retrying", metadata: ["error": "\(error)", "retryIn": "\(delay)"])
                try? await Task.sleep(for: delay)
                if failures > 1 { version = nil }  // a fresh list after repeated failures
            }
        }
    }

    /// 200 ms doubling to 30 s between failed lists and watches.
    static var retryBackoff: Backoff { Backoff(base: .milliseconds(100), cap: .seconds(30)) }

    /// A watch that ended at once with no event: the server (or something in between) is
    /// refusing watches in a way that would otherwise make a hot loop.
    struct VeryShortWatch: Error, CustomStringConvertible {
        var description: String { "very short watch: the watch ended within a second without an event" }
    }

    /// A watch that sent nothing for longer than it should have.
    struct IdleWatch: Error, CustomStringConvertible {
        var idleFor: Duration
        var description: String { "the watch sent nothing for \(idleFor.components.seconds) s (not even a bookmark); reconnecting" }
    }

    private func skip(_ object: UndecodableObject, during: String) {
        undecodable.add(1, ordering: .relaxed)
        logger.error("skipping an object that cannot be decoded", metadata: [
            "object": "\(object)", "during": "\(during)"])
    }

    /// Lists everything, replaces the cache, and reports the difference.
    private func relist() async throws -> String {
        let list = try await client.listAll(Object.self, Object.resourceType, namespace: namespace,
                                            options: ListOptions(labelSelector: labelSelector, limit: 500))
        var seen = Set<ObjectKey>()
        for var object in list.items {
            object.metadata.managedFields = nil
            seen.insert(object.key)
            if let previous = cache.upsert(object) {
                if previous.metadata.resourceVersion != object.metadata.resourceVersion {
                    deliver(.updated(old: previous, new: object))
                }
            } else {
                deliver(.added(object))
            }
        }
        for object in list.undecodable {
            skip(object, during: "list")
            if let name = object.name { seen.insert(ObjectKey(namespace: object.namespace, name: name)) }  // keep what was cached
        }
        for key in cache.keys.subtracting(seen) {
            if let removed = cache.remove(key) { deliver(.deleted(removed)) }
        }
        markSynced()
        return list.metadata.resourceVersion ?? "0"
    }

    /// Watches until the stream ends; returns the last resourceVersion seen and how many events
    /// (bookmarks included) arrived.
    private func watch(from start: String) async throws -> (version: String, events: Int) {
        let stream = try await client.watch(Object.self, Object.resourceType, namespace: namespace, options: WatchOptions(
            labelSelector: labelSelector, resourceVersion: start, allowWatchBookmarks: true, timeoutSeconds: watchTimeoutSeconds))
        let limit = Duration.seconds(watchTimeoutSeconds) + idleGrace
        return try await withIdleTimeout(limit, idle: { IdleWatch(idleFor: $0) }) { [self] progressed in
            var version = start
            var events = 0
            for try await event in stream {
                progressed()
                events += 1
                switch event {
                case .added(var object), .modified(var object):
                    object.metadata.managedFields = nil
                    version = object.metadata.resourceVersion ?? version
                    if let previous = cache.upsert(object) {
                        deliver(.updated(old: previous, new: object))
                    } else {
                        deliver(.added(object))
                    }
                case .deleted(var object):
                    object.metadata.managedFields = nil
                    version = object.metadata.resourceVersion ?? version
                    let removed = cache.remove(object.key) ?? object
                    deliver(.deleted(removed))
                case .bookmark(let resourceVersion):
                    if !resourceVersion.isEmpty { version = resourceVersion }
                case .undecodable(let type, let object):
                    version = object.resourceVersion ?? version
                    skip(object, during: "watch \(type)")
                    if type == "DELETED", let name = object.name,
                       let removed = cache.remove(ObjectKey(namespace: object.namespace, name: name)) {
                        deliver(.deleted(removed))
                    }
                case .error(let status):
                    throw KubernetesError(code: status.code ?? 500, status: status, request: "watch \(Object.resourceType)")
                }
            }
            return (version, events)
        }
    }

    private func markSynced() {
        synced.open()
    }
}
