import Foundation
import KubernetesClient
import Logging
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

/// Keeps an ``ObjectCache`` in step with the API server: lists, then watches from the list's
/// resourceVersion (with bookmarks); when the watch breaks it resumes from the last version
/// seen, and on 410 Gone it lists again and delivers the difference, deletions that happened
/// while disconnected included. Errors back off exponentially (up to 30 s).
public final class Informer<Object: KubernetesObject>: Sendable {
    public let cache = ObjectCache<Object>()
    private let client: KubernetesClient
    private let namespace: String?
    private let labelSelector: String?
    private let watchTimeoutSeconds: Int
    private let logger: Logger
    private let synced = Mutex(false)
    private let syncWaiters = Mutex<(waiters: [CheckedContinuation<Void, Never>], cancelled: Bool)>(([], false))

    public init(client: KubernetesClient, namespace: String? = nil, labelSelector: String? = nil, watchTimeoutSeconds: Int = 300, logger: Logger = Logger(label: "informer")) {
        self.client = client
        self.namespace = namespace
        self.labelSelector = labelSelector
        self.watchTimeoutSeconds = watchTimeoutSeconds
        var logger = logger
        logger[metadataKey: "resource"] = "\(Object.resourceType)"
        self.logger = logger
    }

    /// Whether the first list has been stored.
    public var hasSynced: Bool { synced.withLock { $0 } }

    /// Returns once the first list has been stored.
    public func waitForSync() async {
        await withCheckedContinuation { continuation in
            let resumeNow = synced.withLock { synced in
                if synced { return true }
                return syncWaiters.withLock { state in
                    if state.cancelled { return true }
                    state.waiters.append(continuation)
                    return false
                }
            }
            if resumeNow { continuation.resume() }
        }
    }

    /// Wakes every ``waitForSync()`` caller without a sync (on shutdown).
    func cancelSyncWait() {
        let waiters = syncWaiters.withLock { state in
            state.cancelled = true
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Runs until cancelled, calling `onEvent` for every change to the cache.
    public func run(onEvent: @escaping @Sendable (InformerEvent<Object>) async -> Void = { _ in }) async throws {
        var failures = 0
        var version: String?
        while !Task.isCancelled {
            do {
                if version == nil {
                    version = try await relist(onEvent: onEvent)
                    failures = 0
                }
                version = try await watch(from: version!, onEvent: onEvent)
                failures = 0
            } catch let error as KubernetesError where error.isGone {
                logger.info("watch history expired; listing again", metadata: ["error": "\(error.message)"])
                version = nil
            } catch is CancellationError {
                return
            } catch {
                if Task.isCancelled { return }
                failures += 1
                let delay = Duration.milliseconds(min(30_000, 100 * (1 << min(failures, 9))))
                logger.warning("list/watch failed; retrying", metadata: ["error": "\(error)", "retryIn": "\(delay)"])
                try? await Task.sleep(for: delay)
                if failures > 1 { version = nil }  // a fresh list after repeated failures
            }
        }
    }

    /// Lists everything, replaces the cache, and reports the difference.
    private func relist(onEvent: @Sendable (InformerEvent<Object>) async -> Void) async throws -> String {
        let list = try await client.listAll(Object.self, Object.resourceType, namespace: namespace,
                                            options: ListOptions(labelSelector: labelSelector, limit: 500))
        var seen = Set<ObjectKey>()
        for object in list.items {
            seen.insert(object.key)
            if let previous = cache.upsert(object) {
                if previous.metadata.resourceVersion != object.metadata.resourceVersion {
                    await onEvent(.updated(old: previous, new: object))
                }
            } else {
                await onEvent(.added(object))
            }
        }
        for key in cache.keys.subtracting(seen) {
            if let removed = cache.remove(key) { await onEvent(.deleted(removed)) }
        }
        markSynced()
        return list.metadata.resourceVersion ?? "0"
    }

    /// Watches until the stream ends; returns the last resourceVersion seen.
    private func watch(from start: String, onEvent: @Sendable (InformerEvent<Object>) async -> Void) async throws -> String {
        var version = start
        let stream = try await client.watch(Object.self, Object.resourceType, namespace: namespace, options: WatchOptions(
            labelSelector: labelSelector, resourceVersion: start, allowWatchBookmarks: true, timeoutSeconds: watchTimeoutSeconds))
        for try await event in stream {
            switch event {
            case .added(let object), .modified(let object):
                version = object.metadata.resourceVersion ?? version
                if let previous = cache.upsert(object) {
                    await onEvent(.updated(old: previous, new: object))
                } else {
                    await onEvent(.added(object))
                }
            case .deleted(let object):
                version = object.metadata.resourceVersion ?? version
                let removed = cache.remove(object.key) ?? object
                await onEvent(.deleted(removed))
            case .bookmark(let resourceVersion):
                if !resourceVersion.isEmpty { version = resourceVersion }
            case .error(let status):
                throw KubernetesError(code: status.code ?? 500, status: status, request: "watch \(Object.resourceType)")
            }
        }
        return version
    }

    private func markSynced() {
        let waiters = synced.withLock { synced -> [CheckedContinuation<Void, Never>] in
            synced = true
            return syncWaiters.withLock { state in
                defer { state.waiters.removeAll() }
                return state.waiters
            }
        }
        for waiter in waiters { waiter.resume() }
    }
}
