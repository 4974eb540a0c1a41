import BackupOperator
import ControllerRuntime
import CustomResources
import Foundation
import KubernetesClient
import KubernetesTesting
import ReconcilerTestSupport
import SnapshotPipeline
import TalosTesting
import Testing
import TestSupport

@Suite("One bad object never stops a controller")
struct UndecodableObjectTests {
    @Test("a backup whose status the API server accepts but the operator's types reject is skipped; the others are taken")
    func unreadableStatusIsSkipped() async throws {
        try await withCRDServer { server, client in
            // The transfer is scripted: the talosconfig only has to be valid.
            let talosconfig = try TalosTestServer(etcdEndpoint: "http://127.0.0.1:1").pki.talosconfig(
                role: "os:etcd:backup", endpoints: ["127.0.0.1:50000"], nodes: [], keyType: .ed25519, notAfter: Date() + 86_400)
            for (name, data) in [("my-controlplane-talosconfig", ["talosconfig": talosconfig]),
                                 ("s3-credentials", ["accessKeyID": "AKIAEXAMPLE", "secretAccessKey": "example"])] {
                let secret: JSONValue = [
                    "apiVersion": "v1", "kind": "Secret", "metadata": ["name": .string(name), "namespace": "default"],
                    "data": .object(data.mapValues { .string(Data($0.utf8).base64EncodedString()) }),
                ]
                _ = try await client.create(try GenericObject(raw: secret), .secrets, namespace: "default")
            }
            for name in ["unreadable", "readable"] {
                _ = try await client.create(TalosEtcdBackup(metadata: ObjectMeta(name: name, namespace: "default"), spec: backupSpec()),
                                            TalosEtcdBackup.resourceType, namespace: "default")
            }
            // A local time without an offset: the API server's date-time check (strfmt) takes
            // it, metav1.Time (and this operator) cannot read it.
            _ = try await client.patch(GenericObject.self, TalosEtcdBackup.resourceType, namespace: "default", name: "unreadable",
                                       mergePatch: ["status": ["phase": "Running", "attempts": 1, "startTime": "2026-11-27T00:00"]],
                                       subresource: "status")
            let transfer = ScriptedTransfer(store: { StoredBackup(node: "node", size: 42, sha256: String(repeating: "d", count: 64)) })
            let backupOperator = TalosBackupOperator(client: client, options: .init(namespace: "default", transfer: transfer), logger: quietLogger("operator"))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await backupOperator.run() }
                try await eventually("the readable backup is taken") {
                    let backup = try await client.get(TalosEtcdBackup.self, TalosEtcdBackup.resourceType, namespace: "default", name: "readable")
                    return backup.status?.phase == .succeeded
                }
                group.cancelAll()
            }
            #expect(transfer.stores == 1, "only the readable backup was attempted")
            let unreadable = try await client.get(GenericObject.self, TalosEtcdBackup.resourceType, namespace: "default", name: "unreadable")
            #expect(unreadable["status"]?["startTime"] == "2026-11-27T00:00", "left as it was")
        }
    }
}
