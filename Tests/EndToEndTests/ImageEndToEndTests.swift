import AsyncHTTPClient
import BackupOperator
import Foundation
import CustomResources
import TestSupport
import Testing

/// The image scripts/build-image makes, and how a cluster would run it.
enum ContainerImage {
    /// Set by scripts/test-image, which builds the image first; the suite needs it.
    static let name = ProcessInfo.processInfo.environment["TALOS_ETCD_BACKUP_IMAGE"]
    static let containersConf = repositoryRoot.appendingPathComponent("scripts/container/containers.conf").path

    /// As deploy/default runs the pod: non-root (65532), read-only root filesystem, no
    /// capabilities, no privilege escalation; the host's loopback network, where the test
    /// servers listen.
    static let runArguments = [
        "--read-only", "--user", "65532:65532", "--cap-drop", "all", "--security-opt", "no-new-privileges", "--network", "host",
    ]

    static func podman(_ arguments: [String]) async throws -> ProcessRunner.Result {
        var environment = ProcessInfo.processInfo.environment
        environment["CONTAINERS_CONF"] = containersConf
        return try await ProcessRunner.run("/usr/bin/podman", arguments, environment: environment)
    }

    /// `talos-etcd-backup ARGUMENTS` in a fresh container of the image.
    static func run(_ image: String, _ arguments: [String]) async throws -> ProcessRunner.Result {
        try await podman(["run", "--rm"] + runArguments + [image] + arguments)
    }
}

@Suite("End to end: container image", .serialized,
       .enabled(if: ContainerImage.name != nil, "needs the image: scripts/test-image builds it and runs this suite"))
struct ImageEndToEndTests {
    @Test("labels, non-root user; --help, next-runs in a non-UTC zone (the tz database is in the image), crds: as on the host")
    func offlineCommands() async throws {
        let image = try #require(ContainerImage.name)
        let host = TestHelpers.builtProduct("talos-etcd-backup").path

        let inspect = try await ContainerImage.podman(["image", "inspect", image])
        try #require(inspect.status == 0, "\(inspect.stderr)")
        let description = try #require(try JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as? [[String: Any]]).first
        let config = description?["Config"] as? [String: Any]
        #expect(config?["User"] as? String == "65532:65532")
        let labels = config?["Labels"] as? [String: String] ?? [:]
        let version = try await ProcessRunner.run(host, ["--version"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(labels["org.opencontainers.image.version"] == version)
        #expect(image.hasSuffix(":\(version)"))
        #expect(labels["org.opencontainers.image.revision"]?.count == 40, "a git commit: \(labels)")
        #expect(labels["org.opencontainers.image.source"] != nil && labels["org.opencontainers.image.licenses"] != nil)

        let help = try await ContainerImage.run(image, ["--help"])
        #expect(help.status == 0, "\(help.stderr)")
        #expect(help.stdout.contains("run") && help.stdout.contains("next-runs") && help.stdout.contains("crds"))

        // Berlin leaves winter time on 29 March 2026: the zone's rules come from the image's
        // tz database, and must give what the host's give (and not UTC's answer).
        let nextRuns = ["next-runs", "0 2 * * *", "--time-zone", "Europe/Berlin", "--from", "2026-03-27T00:00:00Z", "--count", "4"]
        let inContainer = try await ContainerImage.run(image, nextRuns)
        #expect(inContainer.status == 0, "\(inContainer.stderr)")
        let onHost = try await ProcessRunner.run(host, nextRuns)
        #expect(inContainer.stdout == onHost.stdout)
        let utc = try await ProcessRunner.run(host, ["next-runs", "0 2 * * *", "--from", "2026-03-27T00:00:00Z", "--count", "4"])
        #expect(inContainer.stdout != utc.stdout, "the zone was applied")
        let unknown = try await ContainerImage.run(image, ["next-runs", "0 2 * * *", "--time-zone", "Mars/Olympus"])
        #expect(unknown.status != 0)

        let crds = try await ContainerImage.run(image, ["crds"])
        #expect(crds.status == 0)
        let files = ["talos.alperen.cloud_talosetcdbackupschedules.yaml", "talos.alperen.cloud_talosetcdbackups.yaml"]
        let committed = try files.map { try String(contentsOf: repositoryRoot.appendingPathComponent("deploy/crds/\($0)"), encoding: .utf8) }
        #expect(crds.stdout == committed.joined(separator: "---\n"))
    }

    @Test("the operator in the container, run as the cluster runs it, takes a backup from the Talos test server into moto through the Kubernetes test server; it restores")
    func backupFromTheContainer() async throws {
        let image = try #require(ContainerImage.name)
        try await Cluster.with { cluster in
            try await cluster.apply(try cluster.manifests(schedule: "unused", cron: "0 0 1 1 *"))
            let probes = TestHelpers.freePort()
            try await cluster.withOperator(name: "in-container", arguments: ["--health-probe-bind-address", "127.0.0.1:\(probes)"], image: image) { _ in
                try await cluster.apply(cluster.backupManifest("from-the-image"))
                try await cluster.waitFor("the backup to finish") {
                    try await cluster.backup("from-the-image")?.phase?.isFinished == true
                }
                let stored = try #require(try await cluster.backup("from-the-image"))
                #expect(stored.phase == .succeeded, "\(String(describing: stored.condition("Failed")?.message))")
                #expect(stored.status?.attemptedBy?.hasPrefix("in-container") == true, "taken by the operator in the container")
                let filename = try #require(stored.status?.filename)
                let restored = try await cluster.restoreAndRead(filename)
                #expect(restored.sha256 == stored.status?.sha256)
                #expect(restored.k7 == "value-7")
                let ready = try await HTTPClient.shared.execute(HTTPClientRequest(url: "http://127.0.0.1:\(probes)/readyz"), timeout: .seconds(60))
                #expect(ready.status.code == 200)
            }
        }
    }
}

/// The restore drill (deploy/drill) as its CronJob runs it: the image under podman, non-root on
/// a read-only root filesystem, `verify --schedule NAME --latest` with the identity mounted as a
/// Kubernetes Secret volume would be (group-readable by the image's user), against Ceph RGW.
extension ImageEndToEndTests {
    @Test("the drill in the container: the newest backup (zstd+age, with its state) verifies, exit 0; its state gone: exit 1; no such schedule, an unreadable identity, the store refusing the credentials: exit 2")
    func drillFromTheContainer() async throws {
        let image = try #require(ContainerImage.name)
        try await Cluster.with(s3Server: "RGW") { cluster in
            let identityDirectory = cluster.directory.appendingPathComponent("identity")
            try FileManager.default.createDirectory(at: identityDirectory, withIntermediateDirectories: true)
            let key = identityDirectory.appendingPathComponent("key.txt").path
            let keygen = try await ProcessRunner.run("/usr/bin/age-keygen", ["-o", key])
            try #require(keygen.status == 0)
            let recipient = try #require(keygen.stderr.split(separator: " ").last).trimmingCharacters(in: .whitespacesAndNewlines)
            // As a Secret volume with fsGroup 65532 and defaultMode 0440 gives it.
            try FileManager.default.setAttributes([.groupOwnerAccountID: 65532, .posixPermissions: 0o440], ofItemAtPath: key)
            let encoded = "        compression:\n          type: zstd\n        encryption:\n          age:\n            recipients:\n            - \(recipient)\n        s3:\n"
            let manifests = try cluster.manifests(schedule: "drilled", cron: "* * * * *")
            try #require(manifests.components(separatedBy: "\n        s3:\n").count == 2, "\(manifests)")
            try await cluster.apply(manifests.replacingOccurrences(of: "\n        s3:\n", with: "\n" + encoded))
            try await cluster.apply(cluster.stateSecret([("secretBundle", "bundle")]))
            try await cluster.withOperator { _ in
                try await cluster.waitFor("a backup to succeed") { try await cluster.backups().contains { $0.phase == .succeeded } }
            }
            let newest = try #require(try await cluster.backups().filter { $0.phase == .succeeded }.max {
                ($0.status?.completionTime?.date ?? .distantPast) < ($1.status?.completionTime?.date ?? .distantPast)
            })
            #expect(newest.status?.encryptedTo != nil && newest.status?.stateFilename != nil, "encrypted, with its state")

            // The drill's arguments, with a kubeconfig for the test server in place of the pod's
            // in-cluster ServiceAccount (which the Kubernetes client reads the same way).
            func drill(namespace: String? = nil) async throws -> ProcessRunner.Result {
                try await ContainerImage.podman(["run", "--rm"] + ContainerImage.runArguments + [
                    "-v", "\(identityDirectory.path):/identity:ro", "-v", "\(cluster.directory.path):\(cluster.directory.path):ro", image,
                    "verify", "--schedule", "drilled", "--latest", "--identity", "/identity/key.txt",
                    "--kubeconfig", cluster.kubectl.kubeconfig, "-n", namespace ?? cluster.namespace,
                ])
            }
            let passed = try await drill()
            #expect(passed.status == 0, "\(passed.stdout)\(passed.stderr)")
            #expect(passed.stdout.contains("verified TalosEtcdBackup \(cluster.namespace)/\(newest.metadata.name ?? "")"), "the newest: \(passed.stdout)")
            #expect(passed.stdout.contains("verified its state"), "\(passed.stdout)")
            #expect(!(passed.stdout + passed.stderr).contains("AGE-SECRET-KEY"), "the identity is never printed")

            let missingSchedule = try await drill(namespace: "no-such-namespace")
            #expect(missingSchedule.status == 2 && missingSchedule.stderr.contains("not found") && missingSchedule.stderr.contains("could not be verified"),
                    "nothing by that name: not checked, \(missingSchedule.status): \(missingSchedule.stderr)")
            // The identity unreadable (a Secret volume without the pod's fsGroup): not checked either.
            try FileManager.default.setAttributes([.posixPermissions: 0o400, .groupOwnerAccountID: 0], ofItemAtPath: key)
            let unreadable = try await drill()
            #expect(unreadable.status == 2 && unreadable.stderr.contains("--identity /identity/key.txt: cannot read it"), "\(unreadable.status): \(unreadable.stderr)")
            try FileManager.default.setAttributes([.groupOwnerAccountID: 65532, .posixPermissions: 0o440], ofItemAtPath: key)

            // The store refuses the credentials: could not be checked, which a Job reports apart.
            func s3Secret(_ secretAccessKey: String) -> String {
                """
                apiVersion: v1
                kind: Secret
                metadata:
                  name: my-s3-credentials
                stringData:
                  accessKeyID: "\(cluster.s3.credentials.accessKeyID)"
                  secretAccessKey: "\(secretAccessKey)"
                """
            }
            try await cluster.apply(s3Secret("not-the-secret-key"))
            let notChecked = try await drill()
            #expect(notChecked.status == 2 && notChecked.stderr.contains("could not be verified"), "\(notChecked.status): \(notChecked.stderr)")
            try await cluster.apply(s3Secret(cluster.s3.credentials.secretAccessKey))

            try await cluster.s3Client.deleteObject(bucket: cluster.s3.bucket, key: try #require(newest.status?.stateFilename))
            let broken = try await drill()
            #expect(broken.status == 1 && broken.stderr.contains("did not verify"), "\(broken.status): \(broken.stderr)")
        }
    }
}
