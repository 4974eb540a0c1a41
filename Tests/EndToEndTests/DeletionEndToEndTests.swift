import Foundation
import KubernetesClient
import CustomResources
import TestSupport
import Testing

@Suite("End to end: deletion always finishes", .serialized)
struct DeletionEndToEndTests {
    @Test("a namespace with a schedule, its Secrets and three backups (each with its state) deleted at once (Secrets first): nothing is left in Kubernetes, and S3 holds exactly what the Events name")
    func namespaceDeletion() async throws {
        try await Cluster.with { cluster in
            // The Lease, and Events about a namespace being deleted, live in the operator's own namespace.
            let system = "\(cluster.namespace)-system"
            let created = try await cluster.kubectl.run(["apply", "-f", "-"], stdin: "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: \(system)\n")
            try #require(created.status == 0, "\(created.stderr)")
            try await cluster.apply(try cluster.manifests(schedule: "doomed", cron: "* * * * *", retention: 5))
            // talos-operator's state Secret: stored beside each snapshot, left beside it too.
            try await cluster.apply(cluster.stateSecret([("secretBundle", "bundle"), ("state", "state")]))
            // 600 s of the test clock pass in about 20 real seconds.
            try await cluster.withOperator(leaseNamespace: system, arguments: ["--object-deletion-timeout-seconds", "600"]) { _ in
                try await cluster.waitFor("three successful backups") {
                    try await cluster.backups().filter { $0.phase == .succeeded }.count >= 3
                }
                // As a namespace controller may order it: the Secrets go first, then everything.
                for secret in ["my-s3-credentials", "my-controlplane-talosconfig"] {
                    try await cluster.client.delete(.secrets, namespace: cluster.namespace, name: secret)
                }
                let deleted = try await cluster.kubectl.run(["delete", "namespace", cluster.namespace, "--wait=false"])
                try #require(deleted.status == 0, "\(deleted.stderr)")
                try await cluster.waitFor("the namespace to be gone") {
                    let error = await TestHelpers.caught(KubernetesError.self) {
                        _ = try await cluster.client.get(GenericObject.self, .namespaces, name: cluster.namespace)
                    }
                    return error?.isNotFound == true
                }
            }
            let stored = Set(try await cluster.objects())
            #expect(!stored.isEmpty, "the credentials were gone: objects stayed")
            let left = try await cluster.events(in: system).filter { $0.reason == ConditionReason.objectLeftInStore.rawValue }
            let named = stored.filter { object in left.contains { $0.note.contains("s3://\(cluster.s3.bucket)/\(object)") } }
            #expect(named == stored, "every object left is named by an ObjectLeftInStore Event, and only those")
            let snapshots = stored.filter { !$0.contains(".state.yaml") }
            #expect(stored.filter { $0.hasSuffix(".state.yaml") }.count == snapshots.count, "each snapshot has its state beside it: \(stored.sorted())")
            #expect(left.count == snapshots.count, "one Event per backup, naming its snapshot and its state")
            #expect(left.allSatisfy { $0.type == "Warning" && $0.note.contains("my-s3-credentials") }, "and says why")
        }
    }
}
