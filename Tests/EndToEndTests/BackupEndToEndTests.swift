import BackupOperator
import ControllerRuntime
import Crypto
import CustomResources
import Foundation
import KubernetesClient
import SnapshotPipeline
import Testing
import TestSupport

@Suite("End to end: backups", .serialized)
struct BackupEndToEndTests {
    /// Waits until backup `name` is Succeeded or Failed and returns it.
    func finished(_ cluster: Cluster, _ name: String, timeout: Duration = .seconds(120)) async throws -> TalosEtcdBackup {
        try await cluster.waitFor("backup \(name) to finish", timeout: timeout) {
            try await cluster.backup(name)?.phase?.isFinished == true
        }
        return try #require(try await cluster.backup(name))
    }

    @Test("into Ceph RGW, a second real S3 implementation: the backup is stored, verified, and restores into a fresh etcd")
    func cephRGW() async throws {
        try await Cluster.with(s3Server: "RGW") { cluster in
            try await cluster.apply(try cluster.manifests(schedule: "unused", cron: "0 0 1 1 *"))
            try await cluster.withOperator { _ in
                try await cluster.apply(cluster.backupManifest("into-rgw"))
                let stored = try await finished(cluster, "into-rgw")
                #expect(stored.phase == .succeeded, "\(String(describing: stored.condition("Failed")?.message))")
                let filename = try #require(stored.status?.filename)
                #expect(try await cluster.objects() == [filename])
                let restored = try await cluster.restoreAndRead(filename)
                #expect(restored.size == stored.status?.size)
                #expect(restored.sha256 == stored.status?.sha256)
                #expect(restored.k7 == "value-7")
                // restore --backup of a plain backup: the snapshot is the object, checked
                // against status.sha256 and size.
                let output = cluster.directory.appendingPathComponent("rgw-restored.db").path
                let restore = try await ProcessRunner.run(TestHelpers.builtProduct("talos-etcd-backup").path, [
                    "restore", "--backup", "into-rgw", "--namespace", cluster.namespace, "--kubeconfig", cluster.kubectl.kubeconfig, "--output", output])
                #expect(restore.status == 0, "\(restore.stderr)")
                #expect(SHA256.hash(data: try Data(contentsOf: URL(fileURLWithPath: output))).map { String(format: "%02x", $0) }.joined() == stored.status?.sha256)
                // Deleting the backup deletes its object there too.
                _ = try await cluster.kubectlOK(["delete", "teb", "into-rgw"])
                try await cluster.waitFor("the object to be deleted") { try await cluster.objects().isEmpty }
            }
        }
    }

    @Test("ambient web identity (IRSA): a backup without keys is stored with the role moto's STS hands the operator for its token, and restores; elsewhere it is refused")
    func ambientWebIdentity() async throws {
        try await Cluster.with { cluster in
            let environment = ProcessInfo.processInfo.environment
            let role = try #require(environment["S3_TEST_AUTH_ROLE_ARN"], "run the tests with scripts/test, which creates the role")
            let tokenFile = cluster.directory.appendingPathComponent("web-identity-token")
            try Data("a-service-account-token".utf8).write(to: tokenFile)
            let irsa = ["AWS_WEB_IDENTITY_TOKEN_FILE": tokenFile.path, "AWS_ROLE_ARN": role, "AWS_ENDPOINT_URL_STS": cluster.s3.endpoint,
                        "AWS_REGION": cluster.s3.region, "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""]
            try await cluster.apply(try cluster.manifests(schedule: "unused", cron: "0 0 1 1 *"))
            try await cluster.withOperator(arguments: ["--ambient-s3-credentials-namespaces", cluster.namespace], environment: irsa) { _ in
                try await cluster.apply(cluster.backupManifest("ambient", credentials: nil))
                let stored = try await finished(cluster, "ambient")
                #expect(stored.phase == .succeeded, "\(String(describing: stored.condition("Failed")?.message))")
                let filename = try #require(stored.status?.filename)
                let restored = try await cluster.restoreAndRead(filename)
                #expect(restored.sha256 == stored.status?.sha256)
                #expect(restored.k7 == "value-7")
                // The CLI, with the same web identity in its environment, reads the object by
                // its URL (`--backup` uses a backup's own keys only: the caller's identity is
                // never used on a spec a tenant wrote).
                let output = cluster.directory.appendingPathComponent("ambient-restored.db").path
                let restore = try await ProcessRunner.run(TestHelpers.builtProduct("talos-etcd-backup").path, [
                    "restore", "--from", "s3://\(cluster.s3.bucket)/\(filename)", "--s3-endpoint", cluster.s3.endpoint,
                    "--s3-region", cluster.s3.region, "--output", output],
                    environment: environment.merging(irsa) { $1 })
                #expect(restore.status == 0, "\(restore.stderr)")
                #expect(SHA256.hash(data: try Data(contentsOf: URL(fileURLWithPath: output))).map { String(format: "%02x", $0) }.joined() == stored.status?.sha256)
                _ = try await cluster.kubectlOK(["delete", "teb", "ambient"])
                try await cluster.waitFor("the object to be deleted") { try await cluster.objects().isEmpty }
            }
            // The same operator without the option: the backup fails at once, naming it.
            try await cluster.withOperator(environment: irsa) { _ in
                try await cluster.apply(cluster.backupManifest("not-allowed", credentials: nil))
                let refused = try await finished(cluster, "not-allowed")
                #expect(refused.phase == .failed)
                #expect(refused.condition("Failed")?.reason == "CredentialsNotFound")
                #expect(refused.condition("Failed")?.message.contains("--ambient-s3-credentials-namespaces") == true)
            }
        }
    }

    @Test("server-side encryption: SSE-KMS on moto, SSE-C on Ceph RGW; stored, recorded in the status (never the key), restored with restore --backup")
    func serverSideEncryption() async throws {
        for (server, extra, mode) in [("AUTH", "serverSideEncryption:\n  type: aws:kms\n  kmsKeyID: alias/etcd-backups", "aws:kms"),
                                      ("RGW", "serverSideEncryption:\n  customerKeySecretRef:\n    name: sse-c\n    key: key", "SSE-C")] {
            try await Cluster.with(s3Server: server) { cluster in
                try await cluster.apply(try cluster.manifests(schedule: "unused", cron: "0 0 1 1 *"))
                // The SSE-C key as `openssl rand -base64 32` makes it.
                let key = Data((0..<32).map { UInt8($0 * 7 & 0xff) }).base64EncodedString()
                try await cluster.apply("apiVersion: v1\nkind: Secret\nmetadata:\n  name: sse-c\ntype: Opaque\nstringData:\n  key: \"\(key)\"\n")
                try await cluster.withOperator { _ in
                    try await cluster.apply(cluster.backupManifest("encrypted-at-rest", extraS3: extra))
                    let stored = try await finished(cluster, "encrypted-at-rest")
                    #expect(stored.phase == .succeeded, "\(server): \(String(describing: stored.condition("Failed")?.message))")
                    #expect(stored.status?.serverSideEncryption == mode)
                    let output = cluster.directory.appendingPathComponent("sse-restored.db").path
                    let restore = try await ProcessRunner.run(TestHelpers.builtProduct("talos-etcd-backup").path, [
                        "restore", "--backup", "encrypted-at-rest", "--namespace", cluster.namespace, "--kubeconfig", cluster.kubectl.kubeconfig,
                        "--output", output])
                    #expect(restore.status == 0, "\(server): \(restore.stderr)")
                    #expect(!restore.stdout.contains(key) && !restore.stderr.contains(key))
                    let restored = try Data(contentsOf: URL(fileURLWithPath: output))
                    #expect(SHA256.hash(data: restored).map { String(format: "%02x", $0) }.joined() == stored.status?.sha256)
                    if mode == "SSE-C", let filename = stored.status?.filename {
                        // By URL: the key from a file; without it the store refuses, and no file is left.
                        let keyFile = cluster.directory.appendingPathComponent("sse-c.key")
                        try Data(key.utf8).write(to: keyFile)
                        var environment = ProcessInfo.processInfo.environment
                        environment["AWS_ACCESS_KEY_ID"] = cluster.s3.credentials.accessKeyID
                        environment["AWS_SECRET_ACCESS_KEY"] = cluster.s3.credentials.secretAccessKey
                        for (name, extra) in [("with-key", ["--s3-sse-customer-key-file", keyFile.path]), ("without-key", [])] {
                            let byURL = cluster.directory.appendingPathComponent("sse-\(name).db").path
                            let result = try await ProcessRunner.run(TestHelpers.builtProduct("talos-etcd-backup").path, [
                                "restore", "--from", "s3://\(cluster.s3.bucket)/\(filename)", "--s3-endpoint", cluster.s3.endpoint,
                                "--s3-region", cluster.s3.region, "--output", byURL] + extra, environment: environment)
                            #expect((result.status == 0) == !extra.isEmpty, "\(name): \(result.stderr)")
                            #expect(FileManager.default.fileExists(atPath: byURL) == !extra.isEmpty, "\(name)")
                            #expect(!result.stderr.contains(key))
                        }
                    }
                    _ = try await cluster.kubectlOK(["delete", "teb", "encrypted-at-rest"])
                    try await cluster.waitFor("the object to be deleted") { try await cluster.objects().isEmpty }
                }
            }
        }
    }

    @Test("S3 Object Lock on Ceph RGW: the backup is stored locked (status.lockedUntil) and restores; deleting it is refused by the store (ObjectLocked), and after --object-deletion-timeout-seconds it goes with ObjectLeftInStore while its object stays")
    func objectLock() async throws {
        try await Cluster.with(s3Server: "RGW", lockedBucket: true) { cluster in
            try await cluster.apply(try cluster.manifests(schedule: "unused", cron: "0 0 1 1 *"))
            // 600 s of the test clock pass in about 20 real seconds.
            try await cluster.withOperator(arguments: ["--object-deletion-timeout-seconds", "600"]) { _ in
                let started = Date()
                try await cluster.apply(cluster.backupManifest("immutable", extraS3: "objectLock:\n  mode: GOVERNANCE\n  retainDays: 1"))
                let stored = try await finished(cluster, "immutable")
                #expect(stored.phase == .succeeded, "\(String(describing: stored.condition("Failed")?.message))")
                let lockedUntil = try #require(stored.status?.lockedUntil?.date)
                #expect(abs(lockedUntil.timeIntervalSince(started.addingTimeInterval(86_400))) < 300, "\(lockedUntil)")
                let filename = try #require(stored.status?.filename)
                let output = cluster.directory.appendingPathComponent("locked-restored.db").path
                let restore = try await ProcessRunner.run(TestHelpers.builtProduct("talos-etcd-backup").path, [
                    "restore", "--backup", "immutable", "--namespace", cluster.namespace, "--kubeconfig", cluster.kubectl.kubeconfig, "--output", output])
                #expect(restore.status == 0, "\(restore.stderr)")
                #expect(SHA256.hash(data: try Data(contentsOf: URL(fileURLWithPath: output))).map { String(format: "%02x", $0) }.joined() == stored.status?.sha256)
                #expect(try await cluster.restoreAndRead(filename).k7 == "value-7")

                _ = try await cluster.kubectlOK(["delete", "teb", "immutable", "--wait=false"])
                try await cluster.waitFor("the backup to go after the deletion timeout", timeout: .seconds(120)) { try await cluster.backup("immutable") == nil }
                let events = try await cluster.events().filter { $0.regarding == "immutable" }
                #expect(events.contains { $0.reason == "ObjectLocked" && $0.note.contains("S3 Object Lock (GOVERNANCE)") }, "\(events.map(\.reason))")
                let left = events.filter { $0.reason == "ObjectLeftInStore" }
                #expect(left.count == 1 && left.first?.note.contains("ObjectLocked:") == true && left.first?.note.contains(filename) == true,
                        "\(left.map(\.note))")
                #expect(try await cluster.objects() == [filename], "the locked object stays")
                let head = try await cluster.s3Client.headObject(bucket: cluster.s3.bucket, key: filename)
                #expect(head.isLocked(at: Date()) && head.objectLockMode == "GOVERNANCE", "\(head)")
            }
        }
    }

    @Test("each failure names its cause on the Failed condition and in a Warning Event, after 3 attempts; failover and nothing stored on failure")
    func failuresNameTheirCause() async throws {
        try await Cluster.with { cluster in
            // The seed's Secrets, a second Secret with a wrong secret key, and control planes
            // whose first endpoint is down.
            try await cluster.apply(try cluster.manifests(schedule: "unused", cron: "0 0 1 1 *"))
            let wrong = """
                apiVersion: v1
                kind: Secret
                metadata:
                  name: wrong-s3-credentials
                stringData:
                  accessKeyID: "\(cluster.s3.credentials.accessKeyID)"
                  secretAccessKey: "not-the-secret"
                """
            try await cluster.apply(wrong)
            let deadPort = TestHelpers.freePort()
            let failover = try cluster.talos.talosconfig(endpointsBefore: ["127.0.0.1:\(deadPort)"])
            try await cluster.apply(cluster.talosconfigSecret(controlPlane: "failover", failover))

            try await cluster.withOperator { _ in
                try await cluster.apply(cluster.backupManifest("no-talosconfig", controlPlane: "ghost"))
                try await cluster.apply(cluster.backupManifest("missing-key", accessKeyIDKey: "nope"))
                try await cluster.apply(cluster.backupManifest("wrong-secret", credentials: "wrong-s3-credentials"))
                try await cluster.apply(cluster.backupManifest("first-node-down", controlPlane: "failover"))

                let noConfig = try await finished(cluster, "no-talosconfig")
                #expect(noConfig.phase == .failed)
                #expect(noConfig.status?.attempts == 3, "retried up to 3 attempts")
                #expect(noConfig.condition("Failed")?.reason == ConditionReason.talosConfigNotFound.rawValue)
                #expect(noConfig.condition("Failed")?.message.contains("\(cluster.namespace)/ghost-talosconfig") == true)
                #expect(noConfig.condition("Ready")?.status == .false)
                #expect(noConfig.status?.completionTime != nil)

                let missingKey = try await finished(cluster, "missing-key")
                #expect(missingKey.condition("Failed")?.reason == ConditionReason.credentialsNotFound.rawValue)
                #expect(missingKey.condition("Failed")?.message.contains("my-s3-credentials has no key \"nope\"") == true)

                let wrongSecret = try await finished(cluster, "wrong-secret")
                #expect(wrongSecret.condition("Failed")?.reason == ConditionReason.uploadFailed.rawValue)
                #expect(wrongSecret.condition("Failed")?.message.contains("SignatureDoesNotMatch") == true, "S3's own reason")

                let failedOver = try await finished(cluster, "first-node-down")
                #expect(failedOver.phase == .succeeded, "the second endpoint served the snapshot")
                #expect(failedOver.status?.attempts == 1)

                let events = try await cluster.events()
                #expect(events.contains { $0.type == "Warning" && $0.reason == ConditionReason.talosConfigNotFound.rawValue && $0.regarding == "no-talosconfig" && $0.note.contains("ghost-talosconfig") })
                #expect(events.contains { $0.type == "Warning" && $0.reason == ConditionReason.credentialsNotFound.rawValue && $0.regarding == "missing-key" && $0.note.contains("\"nope\"") })
                #expect(events.contains { $0.type == "Warning" && $0.reason == ConditionReason.uploadFailed.rawValue && $0.regarding == "wrong-secret" })
                #expect(try await cluster.objects() == [try #require(failedOver.status?.filename)], "only the successful backup stored anything")

                // A corrupted snapshot: SnapshotCorrupt, nothing in S3, no parts left.
                cluster.talos.setFault(.corruptByte)
                try await cluster.apply(cluster.backupManifest("corrupt"))
                let corrupt = try await finished(cluster, "corrupt")
                cluster.talos.setFault(.none)
                #expect(corrupt.phase == .failed)
                #expect(corrupt.condition("Failed")?.reason == ConditionReason.snapshotCorrupt.rawValue)
                #expect(events.count < (try await cluster.events()).count)
                #expect(try await cluster.objects().count == 1, "the corrupt snapshot stored nothing")
                #expect(try await cluster.uploads().isEmpty)

                // Encryption to recipients in a Secret that does not exist: EncryptionConfigNotFound
                // naming it, after 3 attempts, and nothing stored (never a plaintext fallback).
                let sealed = cluster.backupManifest("sealed-without-recipients").replacingOccurrences(
                    of: "    s3:\n",
                    with: "    encryption:\n      age:\n        recipientsSecretRef:\n          name: age-recipients\n          key: recipients.txt\n    s3:\n")
                try await cluster.apply(sealed)
                let noRecipients = try await finished(cluster, "sealed-without-recipients")
                #expect(noRecipients.condition("Failed")?.reason == ConditionReason.encryptionConfigNotFound.rawValue)
                #expect(noRecipients.condition("Failed")?.message.contains("Secret \(cluster.namespace)/age-recipients") == true)
                #expect(noRecipients.status?.attempts == 3)
                #expect(try await cluster.events().contains { $0.reason == ConditionReason.encryptionConfigNotFound.rawValue && $0.regarding == "sealed-without-recipients" })
                #expect(try await cluster.objects().count == 1, "nothing stored for it")

                // A finished backup is never run again.
                let before = try #require(try await cluster.backup("no-talosconfig"))
                try await Task.sleep(for: Cluster.tick)
                #expect(try await cluster.backup("no-talosconfig")?.status == before.status)

                // Deleting a failed backup leaves nothing behind; deleting the successful one
                // deletes its object.
                _ = try await cluster.kubectlOK(["delete", "teb", "first-node-down", "corrupt", "--wait=true", "--timeout=20s"])
                #expect(try await cluster.objects().isEmpty)
                // A Failed backup whose S3 secret is wrong stored nothing: it goes at once,
                // without needing the store that refuses it.
                _ = try await cluster.kubectlOK(["delete", "teb", "wrong-secret", "--wait=true", "--timeout=20s"])
                #expect(try await cluster.backup("wrong-secret") == nil)
            }
        }
    }

    @Test("compressed and encrypted: a schedule's backups are stored as .db.zst.age; restore --backup and --from s3:// give snapshots that restore into a fresh etcd; age and zstd decode the same objects; failures leave no output")
    func compressedAndEncrypted() async throws {
        try await Cluster.with { cluster in
            let directory = cluster.directory
            let key = directory.appendingPathComponent("restore-key.txt").path
            let keygen = try await ProcessRunner.run("/usr/bin/age-keygen", ["-o", key])
            try #require(keygen.status == 0)
            let recipient = try #require(keygen.stderr.split(separator: " ").last).trimmingCharacters(in: .whitespacesAndNewlines)
            let recipients = """
                apiVersion: v1
                kind: Secret
                metadata:
                  name: age-recipients
                stringData:
                  recipients.txt: |
                    # the restore key, kept offline
                    \(recipient)

                """
            let encoded = "        compression:\n          type: zstd\n          level: 3\n        encryption:\n          age:\n"
                + "            recipientsSecretRef:\n              name: age-recipients\n              key: recipients.txt\n        s3:\n"
            try await cluster.apply(recipients)
            try await cluster.apply(try cluster.manifests(schedule: "sealed", cron: "* * * * *").replacingOccurrences(of: "        s3:\n", with: encoded))
            try await cluster.withOperator { _ in
                try await cluster.waitFor("two sealed backups to succeed") {
                    try await cluster.backups().filter { $0.phase == .succeeded }.count >= 2
                }
            }
            let backup = try #require(try await cluster.backups().first { $0.phase == .succeeded })
            let name = try #require(backup.metadata.name)
            let status = try #require(backup.status)
            let objectKey = try #require(status.filename)
            #expect(objectKey.hasSuffix("/\(name).db.zst.age"))
            #expect(status.compression == "zstd")
            #expect(status.encryptedTo?.count == 1)
            let snapshotSHA256 = try #require(status.snapshotSHA256)
            #expect(status.sha256 != snapshotSHA256)

            let cli = TestHelpers.builtProduct("talos-etcd-backup").path
            func restoresIntoEtcd(_ file: String) async throws -> String {
                let value = try await EtcdInstance.restoring(URL(fileURLWithPath: file)).stopping { try await $0.etcdctl(["get", "k7", "--print-value-only"]) }
                return value.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            func sha256(_ file: String) throws -> String {
                SHA256.hash(data: try Data(contentsOf: URL(fileURLWithPath: file))).map { String(format: "%02x", $0) }.joined()
            }
            let kubernetesArguments = ["restore", "--backup", name, "--namespace", cluster.namespace, "--kubeconfig", cluster.kubectl.kubeconfig]

            // restore --backup: status, spec and Secrets through the kubeconfig.
            let fromBackup = directory.appendingPathComponent("from-backup.db").path
            let byName = try await ProcessRunner.run(cli, kubernetesArguments + ["--identity", key, "--output", fromBackup])
            #expect(byName.status == 0, "\(byName.stderr)")
            #expect(try sha256(fromBackup) == snapshotSHA256)
            #expect(try await restoresIntoEtcd(fromBackup) == "value-7")
            #expect(!(byName.stdout + byName.stderr).contains("AGE-SECRET-KEY"), "the identity is never printed")

            // restore --from s3://: the object's metadata is the record.
            let fromS3 = directory.appendingPathComponent("from-s3.db").path
            let environment = ProcessInfo.processInfo.environment.merging(
                ["AWS_ACCESS_KEY_ID": cluster.s3.credentials.accessKeyID, "AWS_SECRET_ACCESS_KEY": cluster.s3.credentials.secretAccessKey]) { $1 }
            let byURL = try await ProcessRunner.run(cli, ["restore", "--from", "s3://\(cluster.s3.bucket)/\(objectKey)", "--s3-endpoint", cluster.s3.endpoint,
                                                          "--s3-region", cluster.s3.region, "--identity", key, "--output", fromS3], environment: environment)
            #expect(byURL.status == 0, "\(byURL.stderr)")
            #expect(!byURL.stderr.contains("warning"), "the record was found: \(byURL.stderr)")
            #expect(try sha256(fromS3) == snapshotSHA256)

            // The same object, decoded by the age and zstd CLIs.
            let object = directory.appendingPathComponent("object.db.zst.age")
            let (storedSize, storedSHA256) = try await cluster.s3.readBack(objectKey, saveTo: object)
            #expect(storedSize == status.size && storedSHA256 == status.sha256)
            let cliDecoded = directory.appendingPathComponent("cli.db").path
            let decoded = try await ProcessRunner.run("/bin/sh", ["-c", "age -d -i \(key) \(object.path) | zstd -d -q -o \(cliDecoded)"])
            #expect(decoded.status == 0, "\(decoded.stderr)")
            #expect(try sha256(cliDecoded) == snapshotSHA256)

            // Failures: no identity, a wrong one, an object whose record was altered (another
            // backup's hashes), a missing object; each says why, none writes.
            let otherKey = directory.appendingPathComponent("other-key.txt").path
            _ = try await ProcessRunner.run("/usr/bin/age-keygen", ["-o", otherKey])
            let other = try #require(try await cluster.backups().first { $0.phase == .succeeded && $0.metadata.name != name })
            var altered = try #require(StoredBackup(metadata: try await cluster.s3Client.headObject(bucket: cluster.s3.bucket, key: objectKey).metadata))
            // (The two snapshots of an unchanged etcd are the same; their encryptions differ.)
            altered.sha256 = try #require(other.status?.sha256)
            #expect(altered.sha256 != status.sha256)
            try await cluster.s3Client.replaceMetadata(bucket: cluster.s3.bucket, key: objectKey, size: altered.size,
                                                       metadata: altered.metadata(owner: backup.metadata.uid ?? ""))
            let fromS3Arguments = ["restore", "--from", "s3://\(cluster.s3.bucket)/\(objectKey)", "--s3-endpoint", cluster.s3.endpoint,
                                   "--s3-region", cluster.s3.region, "--identity", key]
            let failures: [(String, [String], String, Bool)] = [
                ("no identity", kubernetesArguments, "is encrypted (.age): pass --identity", false),
                ("wrong identity", ["restore", "--from", object.path, "--identity", otherKey], "no identity matches", false),
                ("altered record", fromS3Arguments, "the stored object SHA-256 does not match the backup's record", true),
                ("missing object", kubernetesArguments + ["--identity", key], "does not exist", false),
            ]
            for (what, arguments, message, deleteAfter) in failures {
                let output = directory.appendingPathComponent("failed.db").path
                let result = try await ProcessRunner.run(cli, arguments + ["--output", output], environment: environment)
                if deleteAfter { try await cluster.s3Client.deleteObject(bucket: cluster.s3.bucket, key: objectKey) }
                #expect(result.status != 0, "\(what)")
                #expect(result.stderr.contains(message), "\(what): \(result.stderr)")
                #expect(!FileManager.default.fileExists(atPath: output), "\(what): no output file")
                let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.contains("partial") }
                #expect(leftovers.isEmpty, "\(what): no temporary file left: \(leftovers)")
            }
        }
    }

    @Test("SIGTERM mid-upload aborts the upload and releases the lease; SIGKILL mid-upload and a restart give one good object, no orphaned parts")
    func interruptedUploads() async throws {
        try await Cluster.with { cluster in
            // 40 MiB at 8 MiB/s: five seconds of upload to interrupt.
            let size = 40 * 1024 * 1024
            cluster.talos.serveSyntheticSnapshots(size: size)
            cluster.talos.setFault(.throttle(bytesPerSecond: 8 * 1024 * 1024))
            try await cluster.apply(try cluster.manifests(schedule: "unused", cron: "0 0 1 1 *"))

            // SIGTERM while parts are in flight: a clean stop.
            let first = try await cluster.startOperator(name: "operator-a")
            try await cluster.apply(cluster.backupManifest("big"))
            try await cluster.waitFor("a multipart upload in progress") { !(try await cluster.uploads().isEmpty) }
            first.send(SIGTERM)
            let stopped = try await first.finish()
            #expect(stopped.status == 0, "\(stopped.stderr)")
            #expect(try await cluster.uploads().isEmpty, "SIGTERM aborted the multipart upload")
            let lease = try await cluster.client.get(Lease.self, .leases, namespace: cluster.namespace, name: "talos-etcd-backup")
            #expect(lease.spec?.holderIdentity == nil || lease.spec?.holderIdentity == "", "the lease was released")
            let interrupted = try #require(try await cluster.backup("big"))
            #expect(interrupted.phase == .running && interrupted.status?.attempts == 1)

            // SIGKILL while parts are in flight: the parts stay behind, for now.
            let second = try await cluster.startOperator(name: "operator-b")
            try await cluster.waitFor("the backup's second attempt to upload") {
                let attempts = try await cluster.backup("big")?.status?.attempts
                let uploads = try await cluster.uploads()
                return attempts == 2 && !uploads.isEmpty
            }
            second.send(SIGKILL)
            _ = try await second.finish()
            #expect(!(try await cluster.uploads().isEmpty))

            // A restarted operator runs the backup again under the same key and cleans up.
            try await cluster.withOperator(name: "operator-c") { _ in
                let done = try await finished(cluster, "big", timeout: .seconds(300))
                #expect(done.phase == .succeeded)
                #expect(done.status?.attempts == 3)
                #expect(done.status?.size == Int64(size + 32))
                let key = try #require(done.status?.filename)
                #expect(try await cluster.objects() == [key], "one object, no duplicate")
                #expect(try await cluster.uploads().isEmpty, "no orphaned parts")
                let file = cluster.directory.appendingPathComponent("big.db")
                let readBack = try await cluster.s3.readBack(key, saveTo: file)
                #expect(readBack.size == done.status?.size)
                #expect(readBack.sha256 == done.status?.sha256)
                // The synthetic snapshot is a sound bbolt database, as bbolt's own check says.
                let status = try await EtcdInstance.etcdctl(offline: ["snapshot", "status", file.path, "-w", "json"])
                #expect(status.status == 0, "\(status.stderr)")
            }
        }
    }

    @Test("two operators: one leader; after the leader is killed the other takes over without duplicate backups")
    func leaderHandover() async throws {
        try await Cluster.with { cluster in
            try await cluster.withOperator(name: "operator-a") { a in
                try await cluster.withOperator(name: "operator-b") { b in
                    try await cluster.apply(try cluster.manifests(schedule: "ha", cron: "* * * * *", retention: 20))
                    try await cluster.waitFor("two successful backups") {
                        try await cluster.backups().filter { $0.phase == .succeeded }.count >= 2
                    }
                    let lease = try await cluster.client.get(Lease.self, .leases, namespace: cluster.namespace, name: "talos-etcd-backup")
                    let leader = try #require(lease.spec?.holderIdentity)
                    let (killed, standby, survivor) = leader.hasPrefix("operator-a") ? (a, b, "operator-b") : (b, a, "operator-a")
                    #expect(!standby.stderrSoFar.contains("starting controllers"), "only the leader runs the controllers")
                    killed.send(SIGKILL)
                    try await cluster.waitFor("the other operator to take the lease") {
                        let lease = try await cluster.client.get(Lease.self, .leases, namespace: cluster.namespace, name: "talos-etcd-backup")
                        return lease.spec?.holderIdentity?.hasPrefix(survivor) == true
                    }
                    let before = try await cluster.backups().count
                    try await cluster.waitFor("two more successful backups under the new leader") {
                        try await cluster.backups().filter { $0.phase == .succeeded }.count >= before + 2
                    }
                    _ = try await cluster.kubectlOK(["patch", "tebs", "ha", "--type", "merge", "-p", #"{"spec":{"paused":true}}"#])
                    try await cluster.waitFor("no active backups") {
                        try await cluster.backups().allSatisfy { $0.phase?.isFinished == true }
                    }
                    let backups = try await cluster.backups()
                    #expect(backups.allSatisfy { $0.phase == .succeeded })
                    let ticks = backups.compactMap { Int64(($0.metadata.name ?? "").dropFirst("ha-".count)) }
                    #expect(Set(ticks).count == backups.count && ticks.allSatisfy { $0 % 60 == 0 }, "one backup per tick")
                    #expect(try await cluster.objects() == backups.compactMap(\.status?.filename).sorted(), "one object per backup, none extra")
                    #expect(try await cluster.uploads().isEmpty)
                }
            }
        }
    }
}
