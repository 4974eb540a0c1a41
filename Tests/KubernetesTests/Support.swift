import Foundation
import KubernetesClient
import KubernetesTesting
import Logging
import CustomResources
import Synchronization
import TestSupport
import Testing


/// A core ConfigMap, the simplest kind to exercise the client and runtime with.
struct ConfigMap: KubernetesObject, Equatable {
    static let resourceType = ResourceType(group: "", version: "v1", plural: "configmaps", kind: "ConfigMap")
    var apiVersion = "v1"
    var kind = "ConfigMap"
    var metadata: ObjectMeta
    var data: [String: String]?

    init(_ name: String, namespace: String = "default", data: [String: String]? = nil, labels: [String: String]? = nil) {
        metadata = ObjectMeta(name: name, namespace: namespace, labels: labels)
        self.data = data
    }
}


/// Runs `body` with a test server and a client for it, then shuts both down.
func withServer<T: Sendable>(
    _ options: KubernetesTestServer.Options = .init(logger: quietLogger("kubernetes-test-server")),
    _ body: (KubernetesTestServer, KubernetesClient) async throws -> T
) async throws -> T {
    try await KubernetesTestServer.withRunningClient(options, clientLogger: quietLogger("client"), body)
}

/// Creates the project's CRDs on the server.
func installCRDs(_ client: KubernetesClient) async throws {
    for crd in CustomResourceDefinitions.all {
        _ = try await client.create(try GenericObject(raw: crd), .customResourceDefinitions)
    }
}

/// The seed's schedule from examples/.
func seedSchedule(name: String = "daily-backup-schedule") throws -> TalosEtcdBackupSchedule {
    let spec = TalosEtcdBackupScheduleSpec(
        schedule: "0 2 * * *",
        backupTemplate: BackupTemplate(spec: TalosEtcdBackupSpec(
            talosControlPlaneRef: .init(name: "my-controlplane"),
            backupStorage: BackupStorage(s3: S3Storage(
                bucket: "my-etcd-backups", region: "us-west-2",
                accessKeyID: .init(name: "my-s3-credentials", key: "accessKeyID"),
                secretAccessKey: .init(name: "my-s3-credentials", key: "secretAccessKey"))))),
        retention: 7)
    return TalosEtcdBackupSchedule(metadata: ObjectMeta(name: name, namespace: "default"), spec: spec)
}

/// The error `body` throws as a KubernetesError, or nil.
func kubernetesError(_ body: () async throws -> Void) async -> KubernetesError? {
    await TestHelpers.caught(KubernetesError.self, body)
}
