import ControllerRuntime
import CustomResources
import Foundation
import KubernetesClient
import KubernetesTesting
import Testing
import TestSupport

/// The in-memory API as a reconciler's tests use it: every write of a schedule or a backup
/// returns only once the environment's informer has seen it (or a newer version). A
/// controller is woken by the watch event of the write it acts on, so the store it reads is
/// never behind what woke it; a test that writes and then calls `reconcile` directly gets the
/// same guarantee, and reconcilers read through the store (``ObjectClient``) in tests as in
/// production. The wait reads the object back with a GET: a test that arms a GET fault on
/// `environment.api` should expect this read to take it. A store that is behind (which the
/// reconcilers tolerate: a stale write conflicts and is retried from a fresh read) is not
/// made here; the operator-level tests (`RequestBudgetTests`, `CacheSyncTests`, the end-to-end
/// suites) run the informers as they are.
struct CacheSyncingAPI: KubernetesAPI {
    let base: InMemoryKubernetesAPI
    let schedules: ObjectCache<TalosEtcdBackupSchedule>
    let backups: ObjectCache<TalosEtcdBackup>

    func get<T: Decodable>(_ type: T.Type, _ resource: ResourceType, namespace: String?, name: String) async throws -> T {
        try await base.get(type, resource, namespace: namespace, name: name)
    }

    func list<T: Decodable & Sendable>(_ type: T.Type, _ resource: ResourceType, namespace: String?, options: ListOptions) async throws -> ObjectList<T> {
        try await base.list(type, resource, namespace: namespace, options: options)
    }

    func create<T: Codable>(_ object: T, _ resource: ResourceType, namespace: String?) async throws -> T {
        let written = try await base.create(object, resource, namespace: namespace)
        try await caughtUp(resource, written)
        return written
    }

    func update<T: Codable>(_ object: T, _ resource: ResourceType, namespace: String?, name: String) async throws -> T {
        let written = try await base.update(object, resource, namespace: namespace, name: name)
        try await caughtUp(resource, written)
        return written
    }

    func updateStatus<T: Codable>(_ object: T, _ resource: ResourceType, namespace: String?, name: String) async throws -> T {
        let written = try await base.updateStatus(object, resource, namespace: namespace, name: name)
        try await caughtUp(resource, written)
        return written
    }

    func patch<T: Decodable>(_ type: T.Type, _ resource: ResourceType, namespace: String?, name: String, mergePatch: JSONValue,
                             subresource: String?) async throws -> T {
        let written = try await base.patch(type, resource, namespace: namespace, name: name, mergePatch: mergePatch, subresource: subresource)
        try await caughtUp(resource, namespace: namespace, name: name)
        return written
    }

    func delete(_ resource: ResourceType, namespace: String?, name: String, options: DeleteOptions) async throws {
        try await base.delete(resource, namespace: namespace, name: name, options: options)
        try await caughtUp(resource, namespace: namespace, name: name)
    }

    func watch<T: Decodable & Sendable>(_ type: T.Type, _ resource: ResourceType, namespace: String?, options: WatchOptions) async throws -> WatchStream<T> {
        try await base.watch(type, resource, namespace: namespace, options: options)
    }

    private func caughtUp<T>(_ resource: ResourceType, _ written: T) async throws {
        guard let object = written as? any KubernetesObject else { return }
        try await caughtUp(resource, namespace: object.metadata.namespace, name: object.metadata.name ?? "")
    }

    /// Waits until the informer of `resource` (if the environment has one) holds what the
    /// server holds now for the object: its resourceVersion or a newer one, or its absence.
    private func caughtUp(_ resource: ResourceType, namespace: String?, name: String) async throws {
        let key = ObjectKey(namespace: namespace, name: name)
        if resource == TalosEtcdBackup.resourceType {
            try await caughtUp(key, cache: backups)
        } else if resource == TalosEtcdBackupSchedule.resourceType {
            try await caughtUp(key, cache: schedules)
        }
    }

    private func caughtUp<Object: KubernetesObject>(_ key: ObjectKey, cache: ObjectCache<Object>) async throws {
        let now: Object?
        do {
            now = try await base.get(Object.self, Object.resourceType, namespace: key.namespace, name: key.name)
        } catch let error as KubernetesError where error.isNotFound {
            now = nil
        }
        try await eventually("the informer to see \(key)") {
            guard let now else { return cache.get(key) == nil }
            let version = { (object: Object?) in object?.metadata.resourceVersion.flatMap { Int($0) } ?? -1 }
            return version(cache.get(key)) >= version(now)
        }
    }
}
