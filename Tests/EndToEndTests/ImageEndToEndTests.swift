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
