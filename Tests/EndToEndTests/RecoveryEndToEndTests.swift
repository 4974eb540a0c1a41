import BackupOperator
import Foundation
import CustomResources
import KubernetesClient
import KubernetesCore
import TalosTesting
import TestSupport
import Testing

/// Issue 14's end to end: a compressed and encrypted backup of a real etcd through the operator,
/// more writes, then `talos-etcd-backup recover --backup` onto a fresh Talos test server node
/// waiting to be bootstrapped: the new etcd serves exactly the backup's keys at its revision.
/// `verify` and the ways `recover` refuses are checked on the way.
@Suite("End to end: recovery", .serialized)
struct RecoveryEndToEndTests {
    @Test("backup (zstd+age) with talos-operator's state Secret through the operator, more writes, verify (both objects), restore --state-output applied with kubectl gives the same Secret, then recover --apply-state onto a fresh node after a yes typed on a terminal: exactly the backup's keys and revision; no --yes without a terminal, a no typed, a wrong identity, an os:etcd:backup talosconfig, a node already recovered: refused, nothing recovered")
    func recoverFromBackup() async throws {
        try await Cluster.with { cluster in
            let directory = cluster.directory
            let key = directory.appendingPathComponent("recovery-key.txt").path
            let keygen = try await ProcessRunner.run("/usr/bin/age-keygen", ["-o", key])
            try #require(keygen.status == 0)
            let recipient = try #require(keygen.stderr.split(separator: " ").last).trimmingCharacters(in: .whitespacesAndNewlines)
            let encoded = "    compression:\n      type: zstd\n    encryption:\n      age:\n        recipients:\n        - \(recipient)\n    s3:\n"
            try await cluster.apply(try cluster.manifests(schedule: "unused", cron: "0 0 1 1 *"))
            // talos-operator's state Secret, its five keys: stored beside the snapshot, encrypted.
            let stateKeys = ["secretBundle", "bundleConfig", "state", "config", "observedKubeVersion"]
            try await cluster.apply(cluster.stateSecret(stateKeys.map { ($0, "\($0)-of-the-lost-cluster") }))
            func stateData() async throws -> JSONValue? {
                try await cluster.client.get(GenericObject.self, .secrets, namespace: cluster.namespace, name: "my-controlplane-state").raw["data"]
            }
            let originalState = try #require(try await stateData())
            let etcd = try #require(cluster.talos.etcdEndpoint)
            for index in 0..<40 { _ = try await EtcdInstance.etcdctl(offline: ["--endpoints", etcd, "put", "before-\(index)", "v\(index)"]) }
            let status = try await cluster.withOperator { _ in
                try await cluster.apply(cluster.backupManifest("sealed").replacingOccurrences(of: "    s3:\n", with: encoded))
                try await cluster.waitFor("the backup to finish") { try await cluster.backup("sealed")?.phase?.isFinished == true }
                return try #require(try await cluster.backup("sealed")?.status)
            }
            #expect(status.phase == .succeeded, "\(String(describing: status.conditions))")
            #expect(status.filename?.hasSuffix(".db.zst.age") == true)
            #expect(status.stateFilename?.hasSuffix("/sealed.state.yaml.zst.age") == true, "\(String(describing: status.stateFilename))")
            let revision = try #require(status.revision)
            #expect(try #require(status.totalKeys) > 60, "k0..k19, before-0..before-39, and etcd's own")
            // Writes after the backup must not come back.
            for index in 0..<5 { _ = try await EtcdInstance.etcdctl(offline: ["--endpoints", etcd, "put", "after-\(index)", "late"]) }

            let cli = TestHelpers.builtProduct("talos-etcd-backup").path
            let source = ["--backup", "sealed", "--namespace", cluster.namespace, "--kubeconfig", cluster.kubectl.kubeconfig]
            let verified = try await ProcessRunner.run(cli, ["verify"] + source + ["--identity", key])
            #expect(verified.status == 0, "\(verified.stderr)")
            #expect(verified.stdout.contains("etcd revision \(revision), \(status.totalKeys ?? 0) keys"), "\(verified.stdout)")
            #expect(verified.stdout.contains("matches the record: sizes, hashes, revision and key count"))
            #expect(verified.stdout.contains("verified its state s3://\(cluster.s3.bucket)/\(status.stateFilename ?? "")"), "\(verified.stdout)")

            // The state comes back as a manifest kubectl applies: the same data.
            let stateFile = directory.appendingPathComponent("state.yaml").path
            let restored = try await ProcessRunner.run(cli, ["restore"] + source + ["--identity", key, "--output", directory.appendingPathComponent("sealed.db").path,
                                                                                     "--state-output", stateFile])
            #expect(restored.status == 0, "\(restored.stderr)")
            try await cluster.client.delete(.secrets, namespace: cluster.namespace, name: "my-controlplane-state")
            let applied = try await cluster.kubectl.run(["apply", "-f", stateFile])
            #expect(applied.status == 0, "\(applied.stderr)")
            #expect(try await stateData() == originalState, "kubectl apply of the restored manifest gives back talos-operator's state")
            try await cluster.client.delete(.secrets, namespace: cluster.namespace, name: "my-controlplane-state")
            let sha256 = try #require(status.sha256)
            let pinned = try await ProcessRunner.run(cli, ["verify"] + source + ["--identity", key, "--expect-sha256", sha256.uppercased()])
            #expect(pinned.status == 0, "\(pinned.stderr)")
            #expect(pinned.stdout.contains("the stored object's SHA-256 is \(sha256), as --expect-sha256 pins it"), "\(pinned.stdout)")

            let announced = Locked<[String]>([])
            try await TalosTestServer.withRunning(etcdEndpoint: nil, announce: { line in announced.withLock { $0.append(line) } }) { node in
                let admin = directory.appendingPathComponent("node-admin.talosconfig").path
                let backupRole = directory.appendingPathComponent("node-etcd-backup.talosconfig").path
                try Data(try node.talosconfig(role: "os:admin").utf8).write(to: URL(fileURLWithPath: admin))
                try Data(try node.talosconfig(role: "os:etcd:backup").utf8).write(to: URL(fileURLWithPath: backupRole))
                let otherKey = directory.appendingPathComponent("other-key.txt").path
                _ = try await ProcessRunner.run("/usr/bin/age-keygen", ["-o", otherKey])
                let recover = ["recover"] + source + ["--node", "127.0.0.1"]
                let refusals: [(String, [String], String)] = [
                    ("no --yes without a terminal", ["--identity", key, "--talosconfig", admin], "refusing to recover without --yes"),
                    ("wrong identity", ["--identity", otherKey, "--talosconfig", admin, "--yes"], "no identity matches"),
                    ("os:etcd:backup talosconfig", ["--identity", key, "--talosconfig", backupRole, "--yes"], "EtcdRecover and Bootstrap need role os:admin"),
                    ("another object pinned", ["--identity", key, "--talosconfig", admin, "--yes", "--expect-sha256", String(repeating: "0", count: 64)],
                     "not \(String(repeating: "0", count: 64)) (--expect-sha256): it is not the object you pinned"),
                ]
                for (what, arguments, message) in refusals {
                    let result = try await ProcessRunner.run(cli, recover + arguments)
                    #expect(result.status == 1, "\(what)")
                    #expect(result.stderr.contains(message), "\(what): \(result.stderr)")
                    #expect(node.recoveryUploads == 0 && node.etcdEndpoint == nil, "\(what): nothing recovered")
                }

                // On a terminal (util-linux `script` gives the command one) it asks: anything but
                // "yes" refuses, "yes" recovers. (`script` merges stderr into stdout.)
                func onTerminal(typing answer: String, extra: [String] = []) async throws -> ProcessRunner.Result {
                    let command = ([cli] + recover + ["--identity", key, "--talosconfig", admin] + extra).joined(separator: " ")
                    return try await ProcessRunner.run("/usr/bin/script", ["-qec", command, "/dev/null"], stdin: Data("\(answer)\n".utf8))
                }
                let declined = try await onTerminal(typing: "no", extra: ["--apply-state"])
                #expect(declined.status == 1 && declined.stdout.contains("Type yes to continue") && declined.stdout.contains("not confirmed"),
                        "\(declined.stdout)")
                #expect(node.recoveryUploads == 0 && node.etcdEndpoint == nil, "declined: nothing recovered")
                let notApplied = await TestHelpers.caught(KubernetesError.self) { _ = try await stateData() }
                #expect(notApplied?.isNotFound == true, "declined: the state Secret is not applied either")
                let recovered = try await onTerminal(typing: "yes", extra: ["--apply-state"])
                #expect(recovered.status == 0, "\(recovered.stdout)")
                #expect(recovered.stdout.contains("about to recover etcd on node 127.0.0.1"), "\(recovered.stdout)")
                #expect(recovered.stdout.contains("etcd revision \(revision), \(status.totalKeys ?? 0) keys"), "\(recovered.stdout)")
                #expect(!(recovered.stdout + recovered.stderr).contains("AGE-SECRET-KEY"), "the identity is never printed")
                // --apply-state: the state Secret is back before etcd is recovered, as it was.
                #expect(recovered.stdout.contains("and first create its state, Secret \(cluster.namespace)/my-controlplane-state (5 keys, stored sha256 \(status.stateSHA256 ?? "")"), "\(recovered.stdout)")
                #expect(recovered.stdout.contains("state Secret \(cluster.namespace)/my-controlplane-state: created"), "\(recovered.stdout)")
                #expect(try await stateData() == originalState)
                #expect(!recovered.stdout.contains("of-the-lost-cluster") && !recovered.stdout.contains(Data("config-of-the-lost-cluster".utf8).base64EncodedString()),
                        "the state's data is never printed")
                let endpoint = try #require(node.etcdEndpoint)
                #expect(announced.withLock { $0 } == ["recovered etcd at \(endpoint)"])

                // Exactly the backup's keys, at its revision.
                let keys = try await EtcdInstance.etcdctl(offline: ["--endpoints", endpoint, "get", "", "--prefix", "--keys-only"])
                let names = Set(keys.stdout.split(separator: "\n").map(String.init))
                let expected = Set((0..<20).map { "k\($0)" } + (0..<40).map { "before-\($0)" })
                #expect(names == expected, "recovered keys: \(names.subtracting(expected)) extra, \(expected.subtracting(names)) missing")
                let endpointStatus = try await EtcdInstance.etcdctl(offline: ["--endpoints", endpoint, "endpoint", "status", "-w", "json"])
                let entries = try #require(try JSONSerialization.jsonObject(with: endpointStatus.stdoutData) as? [[String: Any]])
                let header = try #require((entries.first?["Status"] as? [String: Any])?["header"] as? [String: Any])
                #expect((header["revision"] as? NSNumber)?.int64Value == revision)

                // A node whose etcd runs refuses, as Talos does, and the user is told what to do.
                let again = try await ProcessRunner.run(cli, recover + ["--identity", key, "--talosconfig", admin, "--yes"])
                #expect(again.status == 1)
                #expect(again.stderr.contains("etcd data directory is not empty") && again.stderr.contains("reset the control plane nodes first"), "\(again.stderr)")
            }
        }
    }
}
