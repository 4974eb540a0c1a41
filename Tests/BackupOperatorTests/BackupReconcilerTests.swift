import BackupOperator
import BackupResolution
import ControllerRuntime
import CustomResources
import Foundation
import KubernetesClient
import NIOCore
import OperatorEndpoints
import ReconcilerTestSupport
import S3
import S3TestSupport
import SnapshotPipeline
import TalosAPI
import TalosTesting
import Testing
import TestSupport

@Suite("Backup reconciler: credentials, never overwriting, adopting its own object (Kubernetes API in memory, moto, Talos test server on etcd)")
struct BackupReconcilerTests {
    struct Setup: Sendable {
        let environment: ReconcilerEnvironment
        /// Nil in ``withoutNetwork(_:)``.
        let talos: TalosTestServer?
        let s3: S3TestServer
        let s3Client: S3Client
        let prefix: String
        let reconciler: BackupReconciler
        /// What the reconciler recorded, as Prometheus would scrape it.
        let metrics: DescribedMetricsFactory

        func sample(_ name: String, _ labels: String) -> Double? {
            metricSample("\(name){namespace=\"default\",schedule=\"\"\(labels)}", in: metrics.registry.emitToString())
        }
    }

    /// `s3Server`: AUTH (moto with SigV4 checks), or RGW where a test lists a prefix with a `/`
    /// (moto's verifier rejects even boto3's signature for that).
    func with(s3Server: String = "AUTH", _ body: (Setup) async throws -> Void) async throws {
        try await TalosTestServer.withRunningOnFreshEtcd { talos in
            try await ReconcilerEnvironment.with { environment in
                try await run(body, environment: environment, talos: talos, s3: try S3TestServer.named(s3Server),
                              talosconfig: try talos.talosconfig())
            }
        }
    }

    /// The same setup with no server at all (the Kubernetes API in memory, a talosconfig for an
    /// endpoint nothing listens on, an S3 endpoint nothing listens on): for the reconciler's
    /// decisions around a scripted ``SnapshotTransfer``.
    func withoutNetwork(_ body: (Setup) async throws -> Void) async throws {
        try await ReconcilerEnvironment.with { environment in
            try await run(body, environment: environment, talos: nil, s3: .unreachable,
                          talosconfig: try TalosPKI().talosconfig(role: "os:etcd:backup", endpoints: ["127.0.0.1:1"]))
        }
    }

    /// Stores the credentials Secrets, builds the setup and runs `body` with it.
    private func run(_ body: (Setup) async throws -> Void, environment: ReconcilerEnvironment, talos: TalosTestServer?,
                     s3: S3TestServer, talosconfig: String) async throws {
        let s3Client = try s3.client()
        let metrics = DescribedMetricsFactory(families: BackupMetrics.families)
        let setup = Setup(
            environment: environment, talos: talos, s3: s3, s3Client: s3Client, prefix: "reconciler-\(UUID().uuidString.prefix(8).lowercased())",
            reconciler: BackupReconciler(backups: environment.backupClient, secrets: KubernetesSecretReader(client: environment.client),
                                         transfer: TalosToS3Transfer.unhurried(), events: environment.events, clock: environment.clock,
                                         metrics: BackupMetrics(factory: metrics), logger: quietLogger("backup")),
            metrics: metrics)
        try await setSecret(environment, "s3-credentials", ["accessKeyID": s3.credentials.accessKeyID, "secretAccessKey": s3.credentials.secretAccessKey])
        try await setSecret(environment, "my-controlplane-talosconfig", ["talosconfig": talosconfig])
        do {
            try await body(setup)
            try await s3Client.shutdown()
        } catch {
            try? await s3Client.shutdown()
            throw error
        }
    }

    func setSecret(_ environment: ReconcilerEnvironment, _ name: String, _ data: [String: String]) async throws {
        let object: JSONValue = [
            "apiVersion": "v1", "kind": "Secret", "metadata": ["name": .string(name), "namespace": "default"],
            "data": .object(data.mapValues { .string(Data($0.utf8).base64EncodedString()) }),
        ]
        try? await environment.client.delete(.secrets, namespace: "default", name: name)
        _ = try await environment.client.create(try GenericObject(raw: object), .secrets, namespace: "default")
    }

    func createBackup(_ setup: Setup, _ name: String, controlPlane: String = "my-controlplane") async throws -> TalosEtcdBackup {
        var spec = backupSpec(bucket: setup.s3.bucket, endpoint: setup.s3.endpoint, controlPlane: controlPlane)
        spec.backupStorage.s3.prefix = setup.prefix
        return try await setup.environment.client.create(
            TalosEtcdBackup(metadata: ObjectMeta(name: name, namespace: "default"), spec: spec), TalosEtcdBackup.resourceType, namespace: "default")
    }

    func backup(_ setup: Setup, _ name: String) async throws -> TalosEtcdBackup {
        try await setup.environment.client.get(TalosEtcdBackup.self, TalosEtcdBackup.resourceType, namespace: "default", name: name)
    }

    func objectKey(_ setup: Setup, _ name: String) -> String { "\(setup.prefix)/default/my-controlplane/\(name).db" }

    @Test("an object already at the key that is not this backup's is never overwritten (ObjectExists, at once) nor deleted with the backup")
    func neverOverwrites() async throws {
        try await with { setup in
            let key = objectKey(setup, "taken")
            let etag = try await setup.s3Client.putObject(bucket: setup.s3.bucket, key: key, body: ByteBuffer(string: "someone else's object"))
            _ = try await createBackup(setup, "taken")
            #expect(try await setup.reconciler.reconcile(ObjectKey(namespace: "default", name: "taken")) == .done)
            let failed = try await backup(setup, "taken")
            #expect(failed.status?.phase == .failed)
            #expect(failed.status?.attempts == 1, "no retry can fix this")
            #expect(failed.status?.conditions?[type: ConditionType.failed]?.reason == ConditionReason.objectExists.rawValue)
            #expect(failed.status?.conditions?[type: ConditionType.failed]?.message.contains(key) == true)
            #expect(try await setup.s3Client.headObject(bucket: setup.s3.bucket, key: key).etag == etag)

            try await setup.environment.client.delete(TalosEtcdBackup.resourceType, namespace: "default", name: "taken")
            _ = try await setup.reconciler.reconcile(ObjectKey(namespace: "default", name: "taken"))
            #expect(try await setup.environment.backupNames().isEmpty, "the finalizer was removed")
            #expect(try await setup.s3Client.headObject(bucket: setup.s3.bucket, key: key).etag == etag, "the foreign object is untouched")
            try await setup.s3Client.deleteObject(bucket: setup.s3.bucket, key: key)
        }
    }

    @Test("a spec the API server accepts but the operator cannot use fails at once with InvalidSpec, naming the field")
    func invalidSpec() async throws {
        try await with { setup in
            var spec = backupSpec(bucket: "Not_A_Bucket", endpoint: setup.s3.endpoint)
            spec.backupStorage.s3.prefix = setup.prefix
            _ = try await setup.environment.client.create(
                TalosEtcdBackup(metadata: ObjectMeta(name: "invalid", namespace: "default"), spec: spec), TalosEtcdBackup.resourceType, namespace: "default")
            #expect(try await setup.reconciler.reconcile(ObjectKey(namespace: "default", name: "invalid")) == .done)
            let invalid = try await backup(setup, "invalid")
            #expect(invalid.status?.phase == .failed)
            #expect(invalid.status?.attempts == 1)
            #expect(invalid.status?.conditions?[type: ConditionType.failed]?.reason == ConditionReason.invalidSpec.rawValue)
            #expect(invalid.status?.conditions?[type: ConditionType.failed]?.message.contains("spec.backupStorage.s3.bucket") == true)
            #expect(setup.sample(BackupMetrics.backupsTotal, #",result="Failed",reason="InvalidSpec""#) == 1)
            #expect(setup.sample(BackupMetrics.backupsTotal, #",result="Succeeded",reason="Succeeded""#) == nil)
            #expect(setup.sample(BackupMetrics.durationSeconds + "_count", #",result="Failed""#) == 1)
        }
    }

    @Test("a backup whose upload completed but whose status was lost adopts its own object after verifying it, without a new snapshot")
    func adoptsItsOwnObject() async throws {
        try await with { setup in
            _ = try await createBackup(setup, "lost-status")
            let key = ObjectKey(namespace: "default", name: "lost-status")
            #expect(try await setup.reconciler.reconcile(key) == .done)
            let stored = try await backup(setup, "lost-status")
            #expect(stored.status?.phase == .succeeded, "\(String(describing: stored.status?.conditions))")

            // The status write after the upload never happened; Talos would now refuse a
            // snapshot (a reader's certificate), so only adopting the object can succeed.
            var lost = stored
            lost.status?.phase = .running
            lost.status?.sha256 = nil
            lost.status?.size = nil
            _ = try await setup.environment.client.updateStatus(lost, TalosEtcdBackup.resourceType, namespace: "default", name: "lost-status")
            try await setSecret(setup.environment, "my-controlplane-talosconfig",
                                ["talosconfig": try setup.talos!.talosconfig(role: "os:reader")])
            #expect(try await setup.reconciler.reconcile(key) == .done)
            let adopted = try await backup(setup, "lost-status")
            #expect(adopted.status?.phase == .succeeded, "\(String(describing: adopted.status?.conditions))")
            #expect(adopted.status?.attempts == 2)
            #expect(adopted.status?.sha256 == stored.status?.sha256, "verified and hashed again from S3")
            #expect(adopted.status?.size == stored.status?.size)
            #expect(adopted.status?.node == stored.status?.node)
            // Both outcomes counted (a backup created by hand: schedule=""); no backup name as a label.
            #expect(setup.sample(BackupMetrics.backupsTotal, #",result="Succeeded",reason="Succeeded""#) == 2)
            #expect(setup.sample(BackupMetrics.attemptsTotal, "") == 2)
            let size = try #require(stored.status?.size)
            #expect(setup.sample(BackupMetrics.uploadedBytesTotal, "") == Double(size * 2))
            #expect(setup.sample(BackupMetrics.sizeBytes + "_count", "") == 2)
            #expect(!setup.metrics.registry.emitToString().contains("lost-status"))

            // Deleting it deletes its object.
            try await setup.environment.client.delete(TalosEtcdBackup.resourceType, namespace: "default", name: "lost-status")
            _ = try await setup.reconciler.reconcile(key)
            let missing = await TestHelpers.caught(S3Error.self) {
                _ = try await setup.s3Client.headObject(bucket: setup.s3.bucket, key: objectKey(setup, "lost-status"))
            }
            #expect(missing?.kind == .noSuchKey)
        }
    }

    @Test("deleting a backup while the store refuses keeps the finalizer and says why; once the store answers, object and backup go")
    func deletionRetriesUntilTheStoreAnswers() async throws {
        try await with { setup in
            _ = try await createBackup(setup, "kept")
            let key = ObjectKey(namespace: "default", name: "kept")
            let first = try await setup.reconciler.reconcile(key)
            let stored = try await backup(setup, "kept")
            #expect(stored.status?.phase == .succeeded, "\(first): \(String(describing: stored.status?.conditions))")

            try await setSecret(setup.environment, "s3-credentials", ["accessKeyID": setup.s3.credentials.accessKeyID, "secretAccessKey": "rotated-wrongly"])
            try await setup.environment.client.delete(TalosEtcdBackup.resourceType, namespace: "default", name: "kept")
            // A wrong secret is a failure waiting cannot fix: retried for the deletion timeout.
            guard case .requeue = try await setup.reconciler.reconcile(key) else {
                Issue.record("the deletion is retried")
                return
            }
            #expect(try await backup(setup, "kept").metadata.finalizers == [BackupReconciler.finalizer], "the finalizer stays")
            #expect(try await setup.environment.eventReasons().contains(ConditionReason.deleteFailed.rawValue))
            _ = try await setup.s3Client.headObject(bucket: setup.s3.bucket, key: objectKey(setup, "kept"))

            try await setSecret(setup.environment, "s3-credentials", ["accessKeyID": setup.s3.credentials.accessKeyID, "secretAccessKey": setup.s3.credentials.secretAccessKey])
            _ = try await setup.reconciler.reconcile(key)
            #expect(try await setup.environment.backupNames().isEmpty)
            let missing = await TestHelpers.caught(S3Error.self) {
                _ = try await setup.s3Client.headObject(bucket: setup.s3.bucket, key: objectKey(setup, "kept"))
            }
            #expect(missing?.kind == .noSuchKey)
        }
    }

    @Test("a stream that stops moving fails the attempt (SnapshotStalled) instead of holding the backup forever; nothing is left in S3")
    func stalledStream() async throws {
        try await with { setup in
            let environment = setup.environment
            let reconciler = BackupReconciler(backups: environment.backupClient, secrets: KubernetesSecretReader(client: environment.client),
                transfer: TalosToS3Transfer.unhurried(stallTimeout: .seconds(2)), events: environment.events, clock: environment.clock,
                logger: quietLogger("backup"))
            setup.talos!.setFault(.stall)
            _ = try await createBackup(setup, "stalled")
            let result = try await reconciler.reconcile(ObjectKey(namespace: "default", name: "stalled"))
            #expect(result == .requeue(after: .seconds(10)), "retried like any failure")
            let stalled = try await backup(setup, "stalled")
            #expect(stalled.status?.attempts == 1)
            #expect(stalled.status?.conditions?[type: ConditionType.progressing]?.message.contains("SnapshotStalled") == true)
            #expect(try await setup.environment.eventReasons().contains(ConditionReason.snapshotStalled.rawValue))
            #expect(try await setup.s3Client.multipartUploads(bucket: setup.s3.bucket, key: objectKey(setup, "stalled")).isEmpty)
            setup.talos!.setFault(.none)
        }
    }

    @Test("talosconfig lookup order: key talosconfig, else <name>.talosconfig, else config; a broken one is TalosConfigInvalid after 3 attempts")
    func talosconfigLookup() async throws {
        try await with { setup in
            let environment = setup.environment
            let resolver = CredentialResolver(secrets: KubernetesSecretReader(client: environment.client))
            let config = try setup.talos!.talosconfig()
            try await setSecret(environment, "alt-talosconfig", ["alt.talosconfig": config, "config": "not this one"])
            try await setSecret(environment, "sa-talosconfig", ["config": config])
            try await setSecret(environment, "empty-talosconfig", ["other": config])
            #expect(try await resolver.talosconfig(controlPlane: "alt", namespace: "default").source == "Secret default/alt-talosconfig key \"alt.talosconfig\"")
            #expect(try await resolver.talosconfig(controlPlane: "sa", namespace: "default").source == "Secret default/sa-talosconfig key \"config\"")
            let none = await TestHelpers.caught(BackupFailure.self) { _ = try await resolver.talosconfig(controlPlane: "empty", namespace: "default") }
            #expect(none?.reason == .talosConfigNotFound)
            #expect(none?.message.contains("\"talosconfig\", \"empty.talosconfig\", \"config\"") == true)

            try await setSecret(environment, "broken-talosconfig", ["talosconfig": "context: [unclosed"])
            _ = try await createBackup(setup, "broken", controlPlane: "broken")
            let key = ObjectKey(namespace: "default", name: "broken")
            var now = Date()
            for attempt in 1...3 {
                environment.setTime(now)
                let result = try await setup.reconciler.reconcile(key)
                #expect(try await backup(setup, "broken").status?.attempts == attempt)
                if attempt < 3 {
                    #expect(result == .requeue(after: .seconds(10 << (attempt - 1))), "exponential backoff")
                    // Before the backoff has passed, nothing is attempted.
                    #expect(try await setup.reconciler.reconcile(key) != .done)
                    #expect(try await backup(setup, "broken").status?.attempts == attempt)
                    #expect(try await backup(setup, "broken").status?.conditions?[type: ConditionType.progressing]?.reason == ConditionReason.retrying.rawValue)
                }
                now += 100
            }
            let broken = try await backup(setup, "broken")
            #expect(broken.status?.phase == .failed)
            #expect(broken.status?.conditions?[type: ConditionType.failed]?.reason == ConditionReason.talosConfigInvalid.rawValue)
            #expect(broken.status?.conditions?[type: ConditionType.failed]?.message.contains("broken-talosconfig") == true)
        }
    }
}
