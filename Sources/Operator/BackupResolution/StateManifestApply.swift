import ControlPlaneState
import Foundation
import KubernetesClient
import KubernetesCore

extension StateManifest {
    /// What applying `secret` to the cluster of `client` would do now: create it, replace an
    /// existing Secret's data, labels and type, or nothing (the same already). Read before
    /// asking, so the question says which.
    public static func plan(_ secret: Secret, on client: any KubernetesAPI) async throws -> Applied {
        guard let existing = try await existing(secret, on: client) else { return .created }
        return matches(existing, secret) ? .unchanged : .replaced
    }

    /// Applies `secret` to a cluster that lacks it or holds another version: created when
    /// absent; an existing Secret keeps its other metadata (annotations, owner references) and
    /// gets the stored data, labels and type when they differ (an update with its
    /// resourceVersion: a concurrent change is a conflict, not overwritten); left alone when
    /// the same. A missing namespace is named, with what to do.
    public static func apply(_ secret: Secret, to client: any KubernetesAPI) async throws -> Applied {
        if let existing = try await existing(secret, on: client) {
            guard !matches(existing, secret) else { return .unchanged }
            guard case .object(var members) = existing.raw, case .object(var metadata)? = members["metadata"] else {
                throw StateManifestInvalid(source: "Secret \(secret.namespace)/\(secret.name)", problem: "in the cluster is not an object")
            }
            metadata["labels"] = secret.labels.isEmpty ? nil : .object(secret.labels.mapValues { .string($0) })
            members["metadata"] = .object(metadata)
            members["type"] = .string(secret.type)
            members["data"] = secret.object["data"]
            members["stringData"] = nil
            _ = try await client.update(try GenericObject(raw: .object(members)), .secrets, namespace: secret.namespace, name: secret.name)
            return .replaced
        }
        do {
            _ = try await client.create(try GenericObject(raw: secret.object), .secrets, namespace: secret.namespace)
            return .created
        } catch let error as KubernetesError where error.isNotFound {
            throw StateManifestInvalid(source: "Secret \(secret.namespace)/\(secret.name)",
                                       problem: "cannot be created: namespace \(secret.namespace) does not exist (create it, then run again)")
        }
    }

    private static func existing(_ secret: Secret, on client: any KubernetesAPI) async throws -> GenericObject? {
        do {
            return try await client.get(GenericObject.self, .secrets, namespace: secret.namespace, name: secret.name)
        } catch let error as KubernetesError where error.isNotFound {
            return nil
        }
    }

    private static func matches(_ existing: GenericObject, _ secret: Secret) -> Bool {
        let current = try? JSONDecoder().decode(SecretFields.self, from: JSONEncoder().encode(existing.raw))
        return (current?.data ?? [:]).mapValues({ Data(base64Encoded: $0).map(Array.init) }) == secret.data.mapValues(Optional.some)
            && (current?.type ?? "Opaque") == secret.type && (existing.metadata.labels ?? [:]) == secret.labels
    }

    private struct SecretFields: Decodable {
        var type: String?
        var data: [String: String]?
    }
}
