import Foundation
import KubernetesClient

/// Read-modify-write of one object that survives conflicts: each try reads the object fresh,
/// applies the change, and writes it back (the whole object, or only its `status` subresource);
/// a 409 Conflict (someone wrote in between) starts over from a fresh read. Nothing is written
/// when the change leaves the object as it was.
struct ObjectWriter: Sendable {
    let client: KubernetesClient
    var maxTries = 10

    enum Part { case object, status }

    /// The object as written (or as found, when unchanged); nil when it no longer exists.
    @discardableResult
    func modify<T: KubernetesObject & Equatable>(
        _ type: T.Type, _ key: ObjectKey, _ part: Part, _ change: (inout T) throws -> Void
    ) async throws -> T? {
        var tries = 0
        while true {
            tries += 1
            var object: T
            do {
                object = try await client.get(T.self, T.resourceType, namespace: key.namespace, name: key.name)
            } catch let error as KubernetesError where error.isNotFound {
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

    /// Adds `finalizer` unless the object has it or is being deleted.
    func addFinalizer<T: KubernetesObject & Equatable>(_ finalizer: String, to type: T.Type, _ key: ObjectKey) async throws -> T? {
        try await modify(type, key, .object) { object in
            guard object.metadata.deletionTimestamp == nil else { return }
            var finalizers = object.metadata.finalizers ?? []
            if !finalizers.contains(finalizer) { finalizers.append(finalizer) }
            object.metadata.finalizers = finalizers
        }
    }

    /// Removes `finalizer`; the API server deletes the object once no finalizer is left.
    func removeFinalizer<T: KubernetesObject & Equatable>(_ finalizer: String, from type: T.Type, _ key: ObjectKey) async throws {
        try await modify(type, key, .object) { object in
            object.metadata.finalizers = object.metadata.finalizers?.filter { $0 != finalizer }
        }
    }
}
