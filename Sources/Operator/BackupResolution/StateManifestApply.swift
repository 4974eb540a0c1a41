import ControlPlaneState
import Foundation
import KubernetesClient
import KubernetesCore

extension StateManifest {
    /// Applies `secret` as `kubectl apply -f` would to a cluster that lacks it or holds another
    /// version: created when absent, its data, labels and type replaced when they differ, left
    /// alone when they are the same. A missing namespace is named, with what to do.
    public static func apply(_ secret: Secret, to client: any KubernetesAPI) async throws -> Applied {
        do {
            _ = try await client.create(try GenericObject(raw: secret.object), .secrets, namespace: secret.namespace)
            return .created
        } catch let error as KubernetesError where error.isAlreadyExists {
            let existing = try await client.get(GenericObject.self, .secrets, namespace: secret.namespace, name: secret.name)
            let current = try? JSONDecoder().decode(SecretFields.self, from: JSONEncoder().encode(existing.raw))
            if current?.data?.mapValues({ Data(base64Encoded: $0).map(Array.init) }) == secret.data.mapValues(Optional.some),
               (current?.type ?? "Opaque") == secret.type, existing.metadata.labels ?? [:] == secret.labels {
                return .unchanged
            }
            var replacement = secret.object
            if case .object(var members) = replacement, case .object(var metadata)? = members["metadata"] {
                metadata["resourceVersion"] = existing.metadata.resourceVersion.map { .string($0) }
                members["metadata"] = .object(metadata)
                replacement = .object(members)
            }
            _ = try await client.update(try GenericObject(raw: replacement), .secrets, namespace: secret.namespace, name: secret.name)
            return .replaced
        } catch let error as KubernetesError where error.isNotFound {
            throw StateManifestInvalid(source: "Secret \(secret.namespace)/\(secret.name)",
                                       problem: "cannot be created: namespace \(secret.namespace) does not exist (create it, then run again)")
        }
    }

    private struct SecretFields: Decodable {
        var type: String?
        var data: [String: String]?
    }
}
