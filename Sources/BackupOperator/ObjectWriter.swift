import Foundation
import ControllerRuntime
import KubernetesClient

/// Read-modify-write of one object that survives conflicts: the change is applied to the
/// object (the informer's cached copy when given, else a fresh read) and written back (the
/// whole object, or only its `status` subresource) with that copy's `resourceVersion`; a 409
/// Conflict (someone wrote in between, or the cache was behind) starts over from a fresh read.
/// Nothing is written, or read, when the change leaves the object as it was.
struct ObjectWriter: Sendable {
    let client: any KubernetesAPI
    var maxTries = 10

    enum Part { case object, status }

    /// The object as written (or as found, when unchanged); nil when it no longer exists.
    @discardableResult
    func modify<T: KubernetesObject & Equatable>(
        _ type: T.Type, _ key: ObjectKey, _ part: Part, from cached: T? = nil, _ change: (inout T) throws -> Void
    ) async throws -> T? {
        var tries = 0
        var start = cached
        while true {
            tries += 1
            var object: T
            if let copy = start {
                object = copy
                start = nil
            } else if let fresh = try await read(T.self, key) {
                object = fresh
            } else {
                return nil
            }
            let before = object
            try change(&object)
            if object == before { return object }
            do {
                switch part {
                case .object: return try await client.update(object, T.resourceType, namespace: key.namespace, name: key.name)
                case .status: return try await client.updateStatus(object, T.resourceType, namespace: key.namespace, name: key.name)
                }
            } catch let error as KubernetesError where error.isConflict && tries < maxTries {
                continue
            } catch let error as KubernetesError where error.isNotFound {
                return nil
            }
        }
    }

    /// The object from `cache` when there is one (what controllers read), else from the API
    /// server; nil when it does not exist.
    func current<T: KubernetesObject>(_ key: ObjectKey, in cache: ObjectCache<T>?) async throws -> T? {
        if let cache { return cache.get(key) }
        return try await read(T.self, key)
    }

    /// The object as the API server has it now; nil when it does not exist.
    func read<T: KubernetesObject>(_ type: T.Type, _ key: ObjectKey) async throws -> T? {
        do {
            return try await client.get(T.self, T.resourceType, namespace: key.namespace, name: key.name)
        } catch let error as KubernetesError where error.isNotFound {
            return nil
        }
    }

    /// Adds `finalizer` unless the object has it or is being deleted.
    func addFinalizer<T: KubernetesObject & Equatable>(_ finalizer: String, to object: T) async throws -> T? {
        try await modify(T.self, object.key, .object, from: object) { object in
            guard object.metadata.deletionTimestamp == nil else { return }
            var finalizers = object.metadata.finalizers ?? []
            if !finalizers.contains(finalizer) { finalizers.append(finalizer) }
            object.metadata.finalizers = finalizers
        }
    }

    /// Removes `finalizer`; the API server deletes the object once no finalizer is left.
    func removeFinalizer<T: KubernetesObject & Equatable>(_ finalizer: String, from object: T) async throws {
        try await modify(T.self, object.key, .object, from: object) { object in
            object.metadata.finalizers = object.metadata.finalizers?.filter { $0 != finalizer }
        }
    }
}
