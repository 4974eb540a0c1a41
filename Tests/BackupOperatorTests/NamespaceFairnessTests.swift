import BackupOperator
import ControllerRuntime
import Foundation
import KubernetesClient
import KubernetesTesting
import ReconcilerTestSupport
import S3TestSupport
import SnapshotPipeline
import CustomResources
import TalosTesting
import TestSupport
import Testing

/// One operator serves every namespace: a tenant whose backups never finish must not hold
/// every backup worker (Kubernetes test server, Talos test server on etcd, moto, and a
/// trickling S3 endpoint).
@Suite("Fairness across namespaces")
struct NamespaceFairnessTests {
    @Test("a tenant whose S3 endpoint trickles its answers holds one of the two backup workers; another tenant's backup is still taken")
    func slowTenantHoldsOneWorker() async throws {
        let trickling = try await TricklingServer()
        do {
            try await TalosTestServer.withRunningOnFreshEtcd { talos in
                try await withCRDServer { _, client in
                    let moto = try S3TestServer.named("AUTH")
                    let prefix = "fairness-\(UUID().uuidString.prefix(8).lowercased())"
                    for namespace in ["slow-tenant", "other-tenant"] {
                        let object: JSONValue = ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": .string(namespace)]]
                        _ = try await client.create(try GenericObject(raw: object), .namespaces)
                        try await putSecret(client, namespace, "my-controlplane-talosconfig", ["talosconfig": try talos.talosconfig()])
                        try await putSecret(client, namespace, "s3-credentials",
                                            ["accessKeyID": moto.credentials.accessKeyID, "secretAccessKey": moto.credentials.secretAccessKey])
                    }
                    func create(_ name: String, in namespace: String, endpoint: String) async throws {
                        var spec = backupSpec(bucket: moto.bucket, endpoint: endpoint)
                        spec.backupStorage.s3.prefix = prefix
                        _ = try await client.create(TalosEtcdBackup(metadata: ObjectMeta(name: name, namespace: namespace), spec: spec),
                                                    TalosEtcdBackup.resourceType, namespace: namespace)
                    }
                    func phase(_ name: String, in namespace: String) async throws -> BackupPhase? {
                        try await client.get(TalosEtcdBackup.self, TalosEtcdBackup.resourceType, namespace: namespace, name: name).status?.phase
                    }
                    let backupOperator = TalosBackupOperator(client: client, options: .init(maxConcurrentBackups: 2, transfer: TalosToS3Transfer.unhurried()),
                                                             logger: quietLogger("operator"))
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask { try await backupOperator.run() }
                        // Two backups of the slow tenant first: without a cap per namespace they
                        // would take both workers, for as long as the store trickles.
                        try await create("slow-1", in: "slow-tenant", endpoint: trickling.endpoint)
                        try await create("slow-2", in: "slow-tenant", endpoint: trickling.endpoint)
                        try await eventually("one slow backup to be running") {
                            let phases = [try await phase("slow-1", in: "slow-tenant"), try await phase("slow-2", in: "slow-tenant")]
                            return phases.contains(.running)
                        }
                        try await create("on-time", in: "other-tenant", endpoint: moto.endpoint)
                        try await eventually("the other tenant's backup to be stored") {
                            try await phase("on-time", in: "other-tenant") == .succeeded
                        }
                        let slow = [try await phase("slow-1", in: "slow-tenant"), try await phase("slow-2", in: "slow-tenant")]
                        #expect(slow.filter { $0 == .running }.count == 1, "the slow tenant holds one worker, not both: \(slow)")
                        #expect(!slow.contains(.succeeded) && !slow.contains(.failed), "the slow tenant's backups are still waiting on its store: \(slow)")
                        #expect(trickling.connections >= 1, "the slow tenant's store was asked")
                        group.cancelAll()
                    }
                }
            }
            try await trickling.shutdown()
        } catch {
            try? await trickling.shutdown()
            throw error
        }
    }

    private func putSecret(_ client: KubernetesClient, _ namespace: String, _ name: String, _ data: [String: String]) async throws {
        let object: JSONValue = [
            "apiVersion": "v1", "kind": "Secret", "metadata": ["name": .string(name), "namespace": .string(namespace)],
            "data": .object(data.mapValues { .string(Data($0.utf8).base64EncodedString()) }),
        ]
        _ = try await client.create(try GenericObject(raw: object), .secrets, namespace: namespace)
    }
}
