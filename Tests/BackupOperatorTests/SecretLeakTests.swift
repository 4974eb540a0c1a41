import Age
import BackupOperator
import BackupResolution
import ControllerRuntime
import CustomResources
import Foundation
import KubernetesClient
import OperatorEndpoints
import ReconcilerTestSupport
import SnapshotPipeline
import Testing
import TestSupport

extension BackupReconcilerTests {
    @Test("no Secret value reaches a status, an Event, a log line or a metric, on any failure path: a broken talosconfig (not YAML, bad fields), a wrong S3 secret key, a CA bundle that is not PEM, an identity among the recipients")
    func secretsNeverLeak() async throws {
        try await with { setup in
            let recorder = LogRecorder()
            let metrics = DescribedMetricsFactory(families: BackupMetrics.families)
            let reconciler = BackupReconciler(backups: setup.environment.backupClient, secrets: KubernetesSecretReader(client: setup.environment.client),
                                              transfer: TalosToS3Transfer.unhurried(logger: recorder.logger("transfer")), events: setup.environment.events,
                                              clock: setup.environment.clock, metrics: BackupMetrics(factory: metrics),
                                              logger: recorder.logger("backup"))
            let identity = AgeIdentity().secretKeyString
            // Each case: what a tenant put in a Secret, the marker that must appear nowhere, the
            // reason the backup fails with.
            struct Case {
                var name: String
                var marker: String
                var reason: String
                var secrets: [(name: String, data: [String: String])]
                var edit: @Sendable (inout TalosEtcdBackupSpec) -> Void = { _ in }
            }
            let cases = [
                Case(name: "not-yaml", marker: "LEAKMARKNOTYAML", reason: ConditionReason.talosConfigInvalid.rawValue,
                     secrets: [("not-yaml-talosconfig", ["talosconfig": "context: a\ncontexts: [LEAKMARKNOTYAML: {unclosed"])],
                     edit: { $0.talosControlPlaneRef.name = "not-yaml" }),
                Case(name: "bad-fields", marker: "LEAKMARKFIELDS", reason: ConditionReason.talosConfigInvalid.rawValue,
                     secrets: [("bad-fields-talosconfig", ["talosconfig": """
                        context: a
                        contexts:
                          a:
                            endpoints: [127.0.0.1]
                            ca: LEAKMARKFIELDS-not-base64!
                            crt: LEAKMARKFIELDS
                            key: LEAKMARKFIELDS
                        """])],
                     edit: { $0.talosControlPlaneRef.name = "bad-fields" }),
                Case(name: "wrong-secret-key", marker: "LEAKMARKS3SECRETKEY", reason: ConditionReason.uploadFailed.rawValue,
                     secrets: [("leaky-s3", ["secretAccessKey": "LEAKMARKS3SECRETKEY"])],
                     edit: { $0.backupStorage.s3.secretAccessKey = SecretKeySelector(name: "leaky-s3", key: "secretAccessKey") }),
                Case(name: "ca-not-pem", marker: "LEAKMARKCABUNDLE", reason: ConditionReason.uploadFailed.rawValue,
                     secrets: [("leaky-ca", ["ca.crt": "-----BEGIN CERTIFICATE-----\nLEAKMARKCABUNDLE\n-----END CERTIFICATE-----\n"])],
                     edit: { $0.backupStorage.s3.caBundleSecretRef = SecretKeySelector(name: "leaky-ca", key: "ca.crt") }),
                Case(name: "identity-recipient", marker: String(identity.dropFirst("AGE-SECRET-KEY-1".count)), reason: ConditionReason.encryptionConfigInvalid.rawValue,
                     secrets: [("leaky-recipients", ["age.txt": identity + "\n"])],
                     edit: { $0.backupStorage.encryption = Encryption(age: AgeEncryption(recipientsSecretRef: SecretKeySelector(name: "leaky-recipients", key: "age.txt"))) }),
            ]
            for item in cases {
                for secret in item.secrets { try await setSecret(setup.environment, secret.name, secret.data) }
                var spec = backupSpec(bucket: setup.s3.bucket, endpoint: setup.s3.endpoint)
                spec.backupStorage.s3.prefix = setup.prefix
                item.edit(&spec)
                _ = try await setup.environment.client.create(
                    TalosEtcdBackup(metadata: ObjectMeta(name: item.name, namespace: "default"), spec: spec), TalosEtcdBackup.resourceType, namespace: "default")
                var now = Date()
                for _ in 1...BackupReconciler.maxAttempts {
                    setup.environment.setTime(now)
                    if try await reconciler.reconcile(ObjectKey(namespace: "default", name: item.name)) == .done { break }
                    now += 3600
                }
                let failed = try await backup(setup, item.name)
                #expect(failed.status?.phase == .failed, "\(item.name)")
                #expect(failed.status?.conditions?[type: ConditionType.failed]?.reason == item.reason, "\(item.name): \(String(describing: failed.status?.conditions))")
            }
            await setup.environment.events.flush()
            let statuses = try await setup.environment.client.listAll(TalosEtcdBackup.self, TalosEtcdBackup.resourceType, namespace: "default").items
                .flatMap { $0.status?.conditions ?? [] }.map(\.message)
            let events = try await setup.environment.client.listAll(GenericObject.self, .events, namespace: "default").items
                .map { String(decoding: (try? JSONEncoder().encode($0.raw)) ?? Data(), as: UTF8.self) }
            let logs = recorder.text, scraped = metrics.registry.emitToString()
            #expect(statuses.count >= cases.count * 3 && events.count >= cases.count && !logs.isEmpty && scraped.contains("talos_etcd_backup"))
            for item in cases {
                let marker = item.marker.uppercased()
                for (place, text) in [("status", statuses.joined(separator: "\n")), ("Events", events.joined(separator: "\n")), ("logs", logs), ("metrics", scraped)] {
                    #expect(!text.uppercased().contains(marker), "\(item.name): a Secret's value is in the \(place)")
                }
            }
        }
    }
}
