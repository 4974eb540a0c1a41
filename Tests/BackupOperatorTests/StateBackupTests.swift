import Age
import BackupOperator
import BackupResolution
import CustomResources
import Foundation
import KubernetesClient
import NIOCore
import ReconcilerTestSupport
import S3
import SnapshotPipeline
import Testing
import TestSupport
import Yams

/// The control plane's state stored beside each snapshot (talos-operator's `<controlplane>-state`
/// layout), through the backup reconciler and the real transfer (Talos test server on etcd,
/// moto with SigV4): never in plain text when the backup is encrypted, recorded in the status
/// and in the snapshot's metadata, deleted with the backup.
extension BackupReconcilerTests {
    /// talos-operator's state Secret: label `talos.alperen.cloud/type: state`, its five keys,
    /// each holding `marker` so that a plaintext copy would show.
    func createStateSecret(_ setup: Setup, name: String = "my-controlplane-state", marker: String) async throws {
        let keys = ["secretBundle", "bundleConfig", "state", "config", "observedKubeVersion"]
        let object: JSONValue = [
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": ["name": .string(name), "namespace": "default", "labels": ["talos.alperen.cloud/type": "state"]],
            "data": .object(Dictionary(uniqueKeysWithValues: keys.map { ($0, JSONValue.string(Data("\(marker)-\($0)".utf8).base64EncodedString())) })),
        ]
        _ = try await setup.environment.client.create(try GenericObject(raw: object), .secrets, namespace: "default")
    }

    @Test("an encrypted backup stores the <controlplane>-state Secret beside its snapshot, encrypted too; status and metadata record it; deleting the backup deletes both")
    func encryptedState() async throws {
        try await with { setup in
            let identity = AgeIdentity()
            let marker = "STATEMARKER\(UUID().uuidString.prefix(8))"
            try await createStateSecret(setup, marker: marker)
            try await createEncodedBackup(setup, "kit", recipients: [identity.recipient.description], secretRef: false)
            let key = ObjectKey(namespace: "default", name: "kit")
            #expect(try await setup.reconciler.reconcile(key) == .done)
            let kit = try await backup(setup, "kit")
            let status = try #require(kit.status)
            #expect(status.phase == .succeeded, "\(String(describing: status.conditions))")
            let stateKey = try #require(status.stateFilename)
            #expect(stateKey == "\(setup.prefix)/default/my-controlplane/kit.state.yaml.zst.age")

            // Stored encrypted: age's header, and neither a key's value nor its base64 anywhere.
            let stored = try await Self.download(setup, stateKey)
            #expect(stored.starts(with: Data("age-encryption.org/v1\n".utf8)))
            #expect(stored.range(of: Data(marker.utf8)) == nil)
            #expect(stored.range(of: Data(Data("\(marker)-secretBundle".utf8).base64EncodedString().utf8)) == nil)
            #expect(Self.sha256(stored) == status.stateSHA256)
            let snapshotMetadata = try await setup.s3Client.headObject(bucket: setup.s3.bucket, key: try #require(status.filename)).metadata
            #expect(StoredBackup(metadata: snapshotMetadata)?.state == StoredState(key: stateKey, sha256: try #require(status.stateSHA256)))

            // Decrypted with the identity: the Secret's manifest, talos-operator's layout.
            let decoder = try SnapshotDecoder(SnapshotEncoding(compressed: true, encrypted: true), identities: [identity])
            let manifest = try decoder.decode(Array(stored)) + decoder.finish()
            let document = try #require(try Yams.load(yaml: String(decoding: manifest, as: UTF8.self)) as? [String: Any])
            #expect(document["kind"] as? String == "Secret")
            let metadata = try #require(document["metadata"] as? [String: Any])
            #expect(metadata["name"] as? String == "my-controlplane-state")
            #expect((metadata["labels"] as? [String: String]) == ["talos.alperen.cloud/type": "state"])
            #expect(metadata["uid"] == nil && metadata["resourceVersion"] == nil, "no runtime metadata")
            let data = try #require(document["data"] as? [String: String])
            #expect(data.keys.sorted() == ["bundleConfig", "config", "observedKubeVersion", "secretBundle", "state"])
            #expect(data["secretBundle"].flatMap { Data(base64Encoded: $0) } == Data("\(marker)-secretBundle".utf8))

            // Deleting the backup deletes the snapshot and its state.
            try await setup.environment.client.delete(TalosEtcdBackup.resourceType, namespace: "default", name: "kit")
            #expect(try await setup.reconciler.reconcile(key) == .done)
            for object in [stateKey, try #require(status.filename)] {
                let gone = await TestHelpers.caught(S3Error.self) { _ = try await setup.s3Client.headObject(bucket: setup.s3.bucket, key: object) }
                #expect(gone?.kind == .noSuchKey, "\(object) was deleted with its backup")
            }
        }
    }

    @Test("without a state Secret a backup stores no state; a plain backup stores its state as the manifest itself")
    func plainAndAbsentState() async throws {
        try await with { setup in
            _ = try await createBackup(setup, "bare")
            #expect(try await setup.reconciler.reconcile(ObjectKey(namespace: "default", name: "bare")) == .done)
            let bare = try #require(try await backup(setup, "bare").status)
            #expect(bare.phase == .succeeded)
            #expect(bare.stateFilename == nil && bare.stateSHA256 == nil)

            try await createStateSecret(setup, marker: "plain")
            _ = try await createBackup(setup, "withstate")
            #expect(try await setup.reconciler.reconcile(ObjectKey(namespace: "default", name: "withstate")) == .done)
            let status = try #require(try await backup(setup, "withstate").status)
            #expect(status.stateFilename == "\(setup.prefix)/default/my-controlplane/withstate.state.yaml")
            let stored = try await Self.download(setup, try #require(status.stateFilename))
            #expect(String(decoding: stored, as: UTF8.self).hasPrefix("apiVersion: v1\nkind: Secret\n"))
            #expect(Self.sha256(stored) == status.stateSHA256)
        }
    }

    @Test("an encrypted backup whose status was lost after its upload keeps the state its snapshot's record names: no new state (age encrypts differently each time), status and metadata agree")
    func retryKeepsRecordedState() async throws {
        try await with { setup in
            let identity = AgeIdentity()
            try await createStateSecret(setup, marker: "retry")
            try await createEncodedBackup(setup, "again", recipients: [identity.recipient.description], secretRef: false)
            let key = ObjectKey(namespace: "default", name: "again")
            #expect(try await setup.reconciler.reconcile(key) == .done)
            let stored = try await backup(setup, "again")
            let stateKey = try #require(stored.status?.stateFilename)
            let before = try await setup.s3Client.headObject(bucket: setup.s3.bucket, key: stateKey)

            // The status write after the upload never happened; the talosconfig is a reader's
            // now, so only taking the stored object as it is can succeed.
            var lost = stored
            lost.status?.phase = .running
            lost.status?.sha256 = nil
            lost.status?.stateSHA256 = nil
            lost.status?.stateFilename = nil
            _ = try await setup.environment.client.updateStatus(lost, TalosEtcdBackup.resourceType, namespace: "default", name: "again")
            try await setSecret(setup.environment, "my-controlplane-talosconfig", ["talosconfig": try setup.talos!.talosconfig(role: "os:reader")])
            #expect(try await setup.reconciler.reconcile(key) == .done)
            let adopted = try #require(try await backup(setup, "again").status)
            #expect(adopted.phase == .succeeded, "\(String(describing: adopted.conditions))")
            #expect(adopted.stateFilename == stateKey && adopted.stateSHA256 == stored.status?.stateSHA256)
            #expect(try await setup.s3Client.headObject(bucket: setup.s3.bucket, key: stateKey).etag == before.etag, "the state was not written again")
            let metadata = try await setup.s3Client.headObject(bucket: setup.s3.bucket, key: try #require(adopted.filename)).metadata
            #expect(StoredState(metadata: metadata)?.sha256 == adopted.stateSHA256)
            #expect(Self.sha256(try await Self.download(setup, stateKey)) == adopted.stateSHA256)

            // Another attempt of this backup stored another state (a stale replica): both
            // objects are this backup's, so the snapshot is taken again with a state of its own.
            try await setSecret(setup.environment, "my-controlplane-talosconfig", ["talosconfig": try setup.talos!.talosconfig()])
            let uid = try #require(stored.metadata.uid)
            _ = try await setup.s3Client.putObject(bucket: setup.s3.bucket, key: stateKey, body: ByteBuffer(string: "another attempt's state"),
                                                   metadata: [StoredBackup.MetadataKey.owner: uid, StoredBackup.MetadataKey.sha256: String(repeating: "0", count: 64)])
            func rerun() async throws -> TalosEtcdBackupStatus {
                var again = try await backup(setup, "again")
                again.status?.phase = .running
                again.status?.attempts = 1  // an attempt left to take
                _ = try await setup.environment.client.updateStatus(again, TalosEtcdBackup.resourceType, namespace: "default", name: "again")
                _ = try? await setup.reconciler.reconcile(key)
                return try #require(try await backup(setup, "again").status)
            }
            let retaken = try await rerun()
            #expect(retaken.phase == .succeeded, "\(String(describing: retaken.conditions))")
            #expect(retaken.stateSHA256 != adopted.stateSHA256 && retaken.stateSHA256 != String(repeating: "0", count: 64))
            #expect(Self.sha256(try await Self.download(setup, stateKey)) == retaken.stateSHA256)
            let retakenMetadata = try await setup.s3Client.headObject(bucket: setup.s3.bucket, key: try #require(retaken.filename)).metadata
            #expect(StoredState(metadata: retakenMetadata)?.sha256 == retaken.stateSHA256, "the snapshot's record names the state beside it")

            // A state that is not this backup's: never overwritten, and no Succeeded without it.
            _ = try await setup.s3Client.putObject(bucket: setup.s3.bucket, key: stateKey, body: ByteBuffer(string: "someone else's"))
            let refused = try await rerun()
            #expect(refused.phase != .succeeded, "not Succeeded with a state it was not taken with")
            #expect(refused.conditions?.contains { $0.message.contains("is not this backup's state") } == true, "\(String(describing: refused.conditions))")
        }
    }
}
