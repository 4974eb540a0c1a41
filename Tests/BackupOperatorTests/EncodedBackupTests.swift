import Age
import BackupOperator
import ControllerRuntime
import Crypto
import CustomResources
import Foundation
import KubernetesClient
import NIOCore
import ReconcilerTestSupport
import S3
import SnapshotPipeline
import Testing
import TestSupport

/// Compression and encryption through the backup reconciler and the real transfer (Talos test
/// server on etcd, moto with SigV4): what is stored, what is recorded, and the way back.
extension BackupReconcilerTests {
    /// A backup of `name` compressed at level 3 and encrypted to `recipients` and, when given,
    /// to those in Secret `recipients` key `age.txt`.
    func createEncodedBackup(_ setup: Setup, _ name: String, recipients: [String], secretRef: Bool) async throws {
        var spec = backupSpec(bucket: setup.s3.bucket, endpoint: setup.s3.endpoint)
        spec.backupStorage.s3.prefix = setup.prefix
        spec.backupStorage.compression = Compression(type: .zstd, level: 3)
        spec.backupStorage.encryption = Encryption(age: AgeEncryption(
            recipients: recipients, recipientsSecretRef: secretRef ? SecretKeySelector(name: "recipients", key: "age.txt") : nil))
        _ = try await setup.environment.client.create(
            TalosEtcdBackup(metadata: ObjectMeta(name: name, namespace: "default"), spec: spec), TalosEtcdBackup.resourceType, namespace: "default")
    }

    static func sha256(_ data: Data) -> String { SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined() }

    static func download(_ setup: Setup, _ key: String, bucket: String? = nil) async throws -> Data {
        let (_, body) = try await setup.s3Client.getObject(bucket: bucket ?? setup.s3.bucket, key: key)
        var data = Data()
        for try await chunk in body { data.append(contentsOf: chunk.readableBytesView) }
        return data
    }

    @Test("zstd then age to the spec's and the Secret's recipients: key .db.zst.age, the record in status and metadata, and the age and zstd CLIs give back the snapshot")
    func compressedAndEncrypted() async throws {
        try await with { setup in
            let listed = AgeIdentity(), inSecret = AgeIdentity()
            try await setSecret(setup.environment, "recipients", ["age.txt": "# restore key, kept offline\n\n\(inSecret.recipient)\n"])
            try await createEncodedBackup(setup, "sealed", recipients: [listed.recipient.description], secretRef: true)
            #expect(try await setup.reconciler.reconcile(ObjectKey(namespace: "default", name: "sealed")) == .done)
            let sealed = try await backup(setup, "sealed")
            let status = try #require(sealed.status)
            #expect(status.phase == .succeeded, "\(String(describing: status.conditions))")
            let key = try #require(status.filename)
            #expect(key == "\(setup.prefix)/default/my-controlplane/sealed.db.zst.age")
            #expect(status.compression == "zstd")
            #expect(status.encryptedTo == [listed.recipient.fingerprint, inSecret.recipient.fingerprint])
            let snapshotSize = try #require(status.snapshotSize)
            let snapshotSHA256 = try #require(status.snapshotSHA256)

            // The object: its bytes hash to status.sha256, its metadata repeats the record.
            let object = try await Self.download(setup, key)
            #expect(Int64(object.count) == status.size)
            #expect(Self.sha256(object) == status.sha256)
            #expect(!object.starts(with: Data([0x28, 0xB5, 0x2F, 0xFD])), "not a bare zstd frame")
            #expect(object.starts(with: Data("age-encryption.org/v1\n".utf8)))
            let metadata = try await setup.s3Client.headObject(bucket: setup.s3.bucket, key: key).metadata
            #expect(StoredBackup(metadata: metadata) == StoredBackup(
                node: status.node ?? "", size: status.size ?? 0, sha256: status.sha256 ?? "", snapshotSize: snapshotSize,
                snapshotSHA256: snapshotSHA256, compression: "zstd", encryptedTo: status.encryptedTo,
                revision: status.revision, totalKeys: status.totalKeys))
            #expect(status.revision != nil && status.totalKeys != nil)
            #expect(metadata["backup-uid"] == sealed.metadata.uid)

            // Independent implementations: age decrypts with the Secret's recipient's identity,
            // zstd decompresses, and the result is the snapshot the status describes.
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sealed-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            try object.write(to: directory.appendingPathComponent("sealed.db.zst.age"))
            try Data((inSecret.secretKeyString + "\n").utf8).write(to: directory.appendingPathComponent("key.txt"))
            let decoded = try await ProcessRunner.run("/bin/sh", ["-c", "cd \(directory.path) && age -d -i key.txt sealed.db.zst.age | zstd -d -q -o plain.db"])
            #expect(decoded.status == 0, "\(decoded.stderr)")
            let plain = try Data(contentsOf: directory.appendingPathComponent("plain.db"))
            #expect(Int64(plain.count) == snapshotSize)
            #expect(Self.sha256(plain) == snapshotSHA256)

            // The operator's own way back, with the other identity, checked against the record.
            let record = try #require(StoredBackup(metadata: metadata))
            let destination = BackupDestination(s3: try setup.s3.configuration(), bucket: setup.s3.bucket, key: key)
            let collected = Locked(Data())
            let restored = try await SnapshotRestore.download(
                destination, with: setup.s3Client, encoding: SnapshotEncoding(fileName: key), identities: [listed], record: record
            ) { chunk in collected.withLock { $0.append(contentsOf: chunk.readableBytesView) } }
            #expect(restored.sha256 == snapshotSHA256)
            #expect(collected.withLock { $0 } == plain)

            // A record that does not match (another backup's object under this name) is refused.
            var other = record
            other.snapshotSHA256 = String(repeating: "0", count: 64)
            let mismatch = await TestHelpers.caught(RestoreMismatch.self) {
                _ = try await SnapshotRestore.download(destination, with: setup.s3Client, encoding: SnapshotEncoding(fileName: key),
                                                       identities: [listed], record: other) { _ in }
            }
            #expect(mismatch?.what == "snapshot SHA-256")
            // The wrong identity opens nothing.
            let wrong = await TestHelpers.caught(AgeError.self) {
                _ = try await SnapshotRestore.download(destination, with: setup.s3Client, encoding: SnapshotEncoding(fileName: key),
                                                       identities: [AgeIdentity()], record: record) { _ in }
            }
            #expect(wrong == .noMatchingIdentity)
        }
    }

    @Test("recipients: a missing Secret or key is EncryptionConfigNotFound, a bad or empty Secret is EncryptionConfigInvalid naming the line, a bad listed one is InvalidSpec at once; an identity is named as such and never echoed; nothing is stored")
    func recipientProblems() async throws {
        try await with { setup in
            let valid = AgeIdentity().recipient.description
            // age-keygen's output put where recipients belong: a private key.
            let identity = AgeIdentity().secretKeyString
            let cases: [(name: String, secret: [String: String]?, listed: [String], reason: String, message: String)] = [
                ("no-secret", nil, [], "EncryptionConfigNotFound", "Secret default/recipients named by spec.backupStorage.encryption.age.recipientsSecretRef not found"),
                ("no-key", ["other.txt": valid], [], "EncryptionConfigNotFound", "Secret default/recipients has no key \"age.txt\""),
                ("bad-line", ["age.txt": "# ours\n\(valid)\nage1notarecipient\n"], [], "EncryptionConfigInvalid", "key \"age.txt\" (named by spec.backupStorage.encryption.age.recipientsSecretRef): line 3:"),
                ("empty", ["age.txt": "# nothing yet\n"], [], "EncryptionConfigInvalid", "holds no age1... recipient"),
                ("bad-listed", nil, [valid, "age1" + String(valid.dropFirst(4).reversed())], "InvalidSpec", "spec.backupStorage.encryption.age.recipients[1]"),
                ("identity-in-secret", ["age.txt": "# created by age-keygen\n# public key: \(valid)\n\(identity)\n"], [], "EncryptionConfigInvalid",
                 "line 3: an age identity (a private key), not a recipient; put only age1... recipients here"),
                ("identity-listed", nil, [identity.lowercased()], "InvalidSpec",
                 "spec.backupStorage.encryption.age.recipients[0]: an age identity (a private key), not a recipient"),
            ]
            for item in cases {
                try? await setup.environment.client.delete(.secrets, namespace: "default", name: "recipients")
                if let secret = item.secret { try await setSecret(setup.environment, "recipients", secret) }
                try await createEncodedBackup(setup, item.name, recipients: item.listed, secretRef: item.listed.isEmpty)
                let key = ObjectKey(namespace: "default", name: item.name)
                var now = Date()
                for _ in 1...3 {
                    setup.environment.setTime(now)
                    if try await setup.reconciler.reconcile(key) == .done { break }
                    now += 3600
                }
                let failed = try await backup(setup, item.name)
                #expect(failed.status?.phase == .failed, "\(item.name)")
                let condition = failed.status?.conditions?[type: ConditionType.failed]
                #expect(condition?.reason == item.reason, "\(item.name): \(String(describing: condition))")
                #expect(condition?.message.contains(item.message) == true, "\(item.name): \(condition?.message ?? "")")
                #expect(!(condition?.message.contains(valid) ?? false) || item.reason == ConditionReason.invalidSpec.rawValue, "\(item.name): a good recipient is not echoed")
                #expect(failed.status?.attempts == (item.reason == ConditionReason.invalidSpec.rawValue ? 1 : 3), "\(item.name)")
            }
            #expect(try await setup.environment.eventReasons().contains(ConditionReason.encryptionConfigNotFound.rawValue))
            #expect(try await setup.environment.eventReasons().contains(ConditionReason.encryptionConfigInvalid.rawValue))
            // The private key appears in no status and no Event, in either case.
            let keyBody = String(identity.dropFirst("AGE-SECRET-KEY-1".count))
            let statuses = try await setup.environment.client.listAll(TalosEtcdBackup.self, TalosEtcdBackup.resourceType, namespace: "default").items
                .flatMap { $0.status?.conditions ?? [] }.map(\.message)
            let notes = try await setup.environment.client.listAll(GenericObject.self, .events, namespace: "default").items
                .compactMap { event -> String? in if case .string(let note)? = event.raw["note"] { note } else { nil } }
            #expect(!statuses.isEmpty && !notes.isEmpty)
            for text in statuses + notes {
                #expect(!text.uppercased().contains(keyBody), "a private key was echoed: \(text)")
            }
            #expect(try await setup.s3Client.listAllObjects(bucket: setup.s3.bucket, prefix: setup.prefix).isEmpty, "nothing stored")
        }
    }

    @Test("an encoded object left by an earlier attempt: adopted by its record when it has one, else deleted and taken again; a corrupt snapshot stores nothing")
    func encodedObjectsLeftBehind() async throws {
        try await with { setup in
            let identity = AgeIdentity()
            try await createEncodedBackup(setup, "left", recipients: [identity.recipient.description], secretRef: false)
            let key = ObjectKey(namespace: "default", name: "left")
            #expect(try await setup.reconciler.reconcile(key) == .done)
            let stored = try await backup(setup, "left")
            let objectKey = try #require(stored.status?.filename)
            let first = try await setup.s3Client.headObject(bucket: setup.s3.bucket, key: objectKey)

            // The status was lost after the record was written: adopted without a snapshot (the
            // talosconfig now has a reader's role, which Talos refuses snapshots).
            var lost = stored
            lost.status?.phase = .running
            lost.status?.sha256 = nil
            lost.status?.snapshotSHA256 = nil
            _ = try await setup.environment.client.updateStatus(lost, TalosEtcdBackup.resourceType, namespace: "default", name: "left")
            let talosconfig = try setup.talos!.talosconfig()
            try await setSecret(setup.environment, "my-controlplane-talosconfig", ["talosconfig": try setup.talos!.talosconfig(role: "os:reader")])
            #expect(try await setup.reconciler.reconcile(key) == .done)
            let adopted = try await backup(setup, "left")
            #expect(adopted.status?.phase == .succeeded, "\(String(describing: adopted.status?.conditions))")
            #expect(adopted.status?.snapshotSHA256 == stored.status?.snapshotSHA256)
            #expect(adopted.status?.sha256 == stored.status?.sha256)
            #expect(try await setup.s3Client.headObject(bucket: setup.s3.bucket, key: objectKey).etag == first.etag, "not uploaded again")

            // The process died before the record was written: the operator cannot check an
            // encrypted object, so it deletes its own and takes the snapshot again.
            try await setup.s3Client.replaceMetadata(
                bucket: setup.s3.bucket, key: objectKey, size: first.size,
                metadata: ["backup-uid": adopted.metadata.uid ?? "", "talos-node": "x", "compression": "zstd", "encrypted-to": identity.recipient.fingerprint])
            var lostAgain = adopted
            lostAgain.status?.phase = .running
            lostAgain.status?.sha256 = nil
            _ = try await setup.environment.client.updateStatus(lostAgain, TalosEtcdBackup.resourceType, namespace: "default", name: "left")
            try await setSecret(setup.environment, "my-controlplane-talosconfig", ["talosconfig": talosconfig])
            #expect(try await setup.reconciler.reconcile(key) == .done)
            let retaken = try await backup(setup, "left")
            #expect(retaken.status?.phase == .succeeded, "\(String(describing: retaken.status?.conditions))")
            #expect(retaken.status?.sha256 != stored.status?.sha256, "a new encryption (new file key and nonce)")
            #expect(retaken.status?.snapshotSHA256 == stored.status?.snapshotSHA256, "of the same snapshot")
            #expect(StoredBackup(metadata: try await setup.s3Client.headObject(bucket: setup.s3.bucket, key: objectKey).metadata)?.sha256
                == retaken.status?.sha256, "recorded again")

            // A record the bytes do not match (the object was altered in the bucket): refused,
            // never taken as this backup's result.
            var altered = try #require(StoredBackup(metadata: try await setup.s3Client.headObject(bucket: setup.s3.bucket, key: objectKey).metadata))
            altered.sha256 = String(repeating: "0", count: 64)
            try await setup.s3Client.replaceMetadata(bucket: setup.s3.bucket, key: objectKey, size: altered.size,
                                                     metadata: altered.metadata(owner: retaken.metadata.uid ?? ""))
            var lostOnceMore = retaken
            lostOnceMore.status?.phase = .running
            lostOnceMore.status?.attempts = 1
            _ = try await setup.environment.client.updateStatus(lostOnceMore, TalosEtcdBackup.resourceType, namespace: "default", name: "left")
            #expect(try await setup.reconciler.reconcile(key) == .done)
            let refused = try await backup(setup, "left")
            #expect(refused.status?.phase == .failed)
            #expect(refused.status?.conditions?[type: ConditionType.failed]?.message.contains("does not match its record") == true,
                    "\(String(describing: refused.status?.conditions))")

            // A corrupt snapshot, encoded: the trailer check on the plain stream stops it.
            setup.talos!.setFault(.corruptByte)
            defer { setup.talos!.setFault(.none) }
            try await createEncodedBackup(setup, "corrupt", recipients: [identity.recipient.description], secretRef: false)
            _ = try await setup.reconciler.reconcile(ObjectKey(namespace: "default", name: "corrupt"))
            let corrupt = try await backup(setup, "corrupt")
            #expect(corrupt.status?.conditions?[type: ConditionType.progressing]?.message.contains("SnapshotCorrupt") == true,
                    "\(String(describing: corrupt.status?.conditions))")
            let corruptKey = "\(setup.prefix)/default/my-controlplane/corrupt.db.zst.age"
            #expect(await TestHelpers.caught(S3Error.self) { _ = try await setup.s3Client.headObject(bucket: setup.s3.bucket, key: corruptKey) }?.kind == .noSuchKey)
            #expect(try await setup.s3Client.multipartUploads(bucket: setup.s3.bucket, key: corruptKey).isEmpty)
        }
    }
}
