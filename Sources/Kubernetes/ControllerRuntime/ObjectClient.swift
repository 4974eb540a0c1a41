import KubernetesClient

/// One kind's handle for a reconciler, as kube-rs' `Api<K>` and controller-runtime's client
/// are: reads come from the informer's store (no request; its owner index answers "the objects
/// this one controls"), writes go to the API server, a read-modify-write retries on conflict
/// from a fresh read, and finalizers are added and removed the same way. Production and tests
/// build it alike, over an informer: a reconciler has one read path. A fresh read
/// (``fetch(_:)``) is for the few decisions that must not act on a cache that is behind.
public struct ObjectClient<Object: KubernetesObject & Equatable>: Sendable {
    public let api: any KubernetesAPI
    public let cache: ObjectCache<Object>
    /// Writes that conflict this many times in a row give up with the conflict.
    public var maxConflictRetries = 10

    public init(api: any KubernetesAPI, informer: Informer<Object>) {
        self.api = api
        self.cache = informer.cache
    }

    /// Which part of an object a write replaces: the whole object (spec, metadata) or its
    /// `status` subresource.
    public enum Part: Sendable { case object, status }

    // MARK: Reads from the store

    /// The object as the informer last saw it; nil when it does not exist (or not yet there).
    public func cached(_ key: ObjectKey) -> Object? { cache.get(key) }

    /// Every object of `namespace` (all namespaces for nil), as the informer last saw them.
    public func cachedList(namespace: String?) -> [Object] { cache.list(namespace: namespace) }

    /// The objects whose controller ownerReference names `ownerUID` (the store's owner index).
    public func controlled(by ownerUID: String) -> [Object] { cache.controlled(by: ownerUID) }

    // MARK: Reads and writes through the API server

    /// The object as the API server has it now; nil when it does not exist.
    public func fetch(_ key: ObjectKey) async throws -> Object? {
        do {
            return try await api.get(Object.self, Object.resourceType, namespace: key.namespace, name: key.name)
        } catch let error as KubernetesError where error.isNotFound {
            return nil
        }
    }

    /// Every object of `namespace` as the API server has them now (every page).
    public func list(namespace: String?, options: ListOptions = ListOptions()) async throws -> ObjectList<Object> {
        try await api.listAll(Object.self, Object.resourceType, namespace: namespace, options: options)
    }

    public func create(_ object: Object) async throws -> Object {
        try await api.create(object, Object.resourceType, namespace: object.metadata.namespace)
    }

    /// Deletes the object; false when it was already gone.
    @discardableResult
    public func delete(_ key: ObjectKey, options: DeleteOptions = DeleteOptions()) async throws -> Bool {
        do {
            try await api.delete(Object.resourceType, namespace: key.namespace, name: key.name, options: options)
            return true
        } catch let error as KubernetesError where error.isNotFound {
            return false
        }
    }

    /// Read-modify-write that survives conflicts: `change` is applied to `start` (the cached
    /// copy a reconciler holds; a fresh read when nil) and the result written back with that
    /// copy's `resourceVersion`; a 409 Conflict (someone wrote in between, or the cache was
    /// behind) starts over from a fresh read. Nothing is written when the change leaves the
    /// object as it was. Returns the object as written (or as found, when unchanged); nil when
    /// it no longer exists.
    @discardableResult
    public func modify(_ key: ObjectKey, _ part: Part, from start: Object? = nil, _ change: (inout Object) throws -> Void) async throws -> Object? {
        var tries = 0
        var next = start
        while true {
            tries += 1
            var object: Object
            if let copy = next {
                object = copy
                next = nil
            } else if let fresh = try await fetch(key) {
                object = fresh
            } else {
                return nil
            }
            let before = object
            try change(&object)
            if object == before { return object }
            do {
                switch part {
                case .object: return try await api.update(object, Object.resourceType, namespace: key.namespace, name: key.name)
                case .status: return try await api.updateStatus(object, Object.resourceType, namespace: key.namespace, name: key.name)
                }
            } catch let error as KubernetesError where error.isConflict && tries < maxConflictRetries {
                continue
            } catch let error as KubernetesError where error.isNotFound {
                return nil
            }
        }
    }

    /// Adds `finalizer` unless the object has it or is being deleted; nil when it is gone.
    public func addFinalizer(_ finalizer: String, to object: Object) async throws -> Object? {
        try await modify(object.key, .object, from: object) { object in
            guard object.metadata.deletionTimestamp == nil else { return }
            var finalizers = object.metadata.finalizers ?? []
            if !finalizers.contains(finalizer) { finalizers.append(finalizer) }
            object.metadata.finalizers = finalizers
        }
    }

    /// Removes `finalizer`; the API server deletes the object once no finalizer is left.
    public func removeFinalizer(_ finalizer: String, from object: Object) async throws {
        try await modify(object.key, .object, from: object) { object in
            object.metadata.finalizers = object.metadata.finalizers?.filter { $0 != finalizer }
        }
    }
}
