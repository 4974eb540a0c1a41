import KubernetesClient
import Synchronization

/// The local copy of every object an informer watches, indexed by namespace and by
/// controller owner, so reconcilers read without calling the API server.
///
/// Each object is kept boxed: a dictionary's slots hold their values inline, and a table has up
/// to about 2.7 slots per entry (at most 3/4 full, sizes in powers of two), so slots the size of
/// a whole decoded object wasted more than the objects took; slots a pointer wide do not.
public final class ObjectCache<Object: KubernetesObject>: Sendable {
    /// One cached object, shared by the table and by those who read it.
    private final class Box: Sendable {
        let object: Object
        init(_ object: Object) { self.object = object }
    }

    private struct State {
        var objects: [ObjectKey: Box] = [:]
        var byNamespace: [String: Set<ObjectKey>] = [:]
        var byOwner: [String: Set<ObjectKey>] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    public func get(_ key: ObjectKey) -> Object? {
        state.withLock { $0.objects[key]?.object }
    }

    /// Every object, or those of one namespace.
    public func list(namespace: String? = nil) -> [Object] {
        state.withLock { state in
            guard let namespace else { return state.objects.values.map(\.object) }
            return (state.byNamespace[namespace] ?? []).compactMap { state.objects[$0]?.object }
        }
    }

    /// Objects whose controller ownerReference has this uid.
    public func controlled(by ownerUID: String) -> [Object] {
        state.withLock { state in (state.byOwner[ownerUID] ?? []).compactMap { state.objects[$0]?.object } }
    }

    public var count: Int { state.withLock { $0.objects.count } }

    /// Stores `object`; returns what it replaced.
    @discardableResult
    func upsert(_ object: Object) -> Object? {
        state.withLock { state in
            let key = object.key
            let previous = state.objects[key]?.object
            if let previous { Self.unindex(previous, key: key, in: &state) }
            state.objects[key] = Box(object)
            state.byNamespace[object.metadata.namespace ?? "", default: []].insert(key)
            if let owner = object.metadata.controllerReference?.uid { state.byOwner[owner, default: []].insert(key) }
            return previous
        }
    }

    @discardableResult
    func remove(_ key: ObjectKey) -> Object? {
        state.withLock { state in
            guard let previous = state.objects.removeValue(forKey: key)?.object else { return nil }
            Self.unindex(previous, key: key, in: &state)
            return previous
        }
    }

    var keys: Set<ObjectKey> { state.withLock { Set($0.objects.keys) } }

    private static func unindex(_ object: Object, key: ObjectKey, in state: inout State) {
        state.byNamespace[object.metadata.namespace ?? ""]?.remove(key)
        if let owner = object.metadata.controllerReference?.uid {
            state.byOwner[owner]?.remove(key)
            if state.byOwner[owner]?.isEmpty == true { state.byOwner[owner] = nil }
        }
    }
}
