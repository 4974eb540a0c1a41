import Foundation
import KubernetesClient
import KubernetesTesting
import TestSupport
import Testing

@Suite("kubectl accepts the Kubernetes test server")
struct KubectlTests {
    @Test("apply, get -o json, printer columns, merge and status patches, strict fields, watch, delete and wait")
    func kubectlWorkflow() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/kubectl"), "kubectl is missing: run scripts/test, which installs Debian's kubernetes-client")
        try await withServer(.init(tls: true, authentication: .clientCertificate, logger: quietLogger("server"))) { server, _ in
            let directory = try makeTemporaryDirectory("kubectl")
            defer { removeTemporaryDirectory(directory) }
            let kubeconfig = directory.appendingPathComponent("kubeconfig").path
            try server.writeKubeconfig(to: kubeconfig)
            let kubectl = Kubectl(kubeconfig: kubeconfig)
            let root = repositoryRoot.path

            let crds = try await kubectl.run(["apply", "-k", "\(root)/deploy/crds"])
            #expect(crds.status == 0, "\(crds.stderr)")
            #expect(crds.stdout.contains("customresourcedefinition.apiextensions.k8s.io/talosetcdbackupschedules.talos.alperen.cloud created"))

            let seed = try await kubectl.run(["apply", "-f", "\(root)/examples/daily-backup-schedule.yaml"])
            #expect(seed.status == 0, "\(seed.stderr)")
            #expect(seed.stdout == "secret/my-s3-credentials created\ntalosetcdbackupschedule.talos.alperen.cloud/daily-backup-schedule created\n")

            // Protobuf bodies (kubectl create of core kinds) are refused as a server without
            // protobuf refuses them: 415, naming the media types it takes.
            let protobuf = try await kubectl.run(["create", "namespace", "created-with-protobuf"])
            #expect(protobuf.status != 0)
            #expect(protobuf.stderr.contains("UnsupportedMediaType") && protobuf.stderr.contains("application/json"), "\(protobuf.stderr)")

            let json = try await kubectl.run(["get", "tebs", "daily-backup-schedule", "-o", "json"])
            #expect(json.status == 0, "\(json.stderr)")
            let object = try JSONValue.parse(Data(json.stdout.utf8))
            #expect(object["spec"]?["retention"] == 7)
            #expect(object["spec"]?["concurrencyPolicy"] == "Forbid")  // schema default
            #expect(object["metadata"]?["generation"] == 1)

            let secret = try await kubectl.run(["get", "secret", "my-s3-credentials", "-o", "jsonpath={.data.accessKeyID}"])
            #expect(Data(base64Encoded: secret.stdout).map { String(decoding: $0, as: UTF8.self) } == "YOUR_ACCESS_KEY_ID")

            let table = try await kubectl.run(["get", "tebs"])
            let lines = table.stdout.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ") }
            #expect(lines.first == "NAME SCHEDULE PAUSED LAST BACKUP NEXT BACKUP AGE")
            #expect(lines.dropFirst().first?.hasPrefix("daily-backup-schedule 0 2 * * * false") == true)

            // Watch for the change the merge patch makes.
            let watch = try await kubectl.start(["get", "tebs", "daily-backup-schedule", "--watch", "-o", "jsonpath={.spec.paused}{\"\\n\"}"])
            try await eventually("the watch printed the current state") { watch.stdoutSoFar == "false\n" }
            let patched = try await kubectl.run(["patch", "tebs", "daily-backup-schedule", "--type", "merge", "-p", #"{"spec":{"paused":true}}"#])
            #expect(patched.stdout == "talosetcdbackupschedule.talos.alperen.cloud/daily-backup-schedule patched\n")
            try await eventually("the watch saw the patch") { watch.stdoutSoFar == "false\ntrue\n" }
            watch.stop()
            _ = try await watch.finish()

            let status = try await kubectl.run(["patch", "tebs", "daily-backup-schedule", "--subresource=status", "--type", "merge",
                                                "-p", #"{"status":{"lastSuccessfulBackupTime":"2026-11-26T02:00:05Z"}}"#])
            #expect(status.status == 0, "\(status.stderr)")
            let fields = try await kubectl.run(["get", "tebs", "daily-backup-schedule", "-o", "jsonpath={.metadata.generation} {.status.lastSuccessfulBackupTime}"])
            #expect(fields.stdout == "2 2026-11-26T02:00:05Z")

            let misspelt = try await kubectl.run(["apply", "-f", "-"], stdin: try String(contentsOfFile: "\(root)/examples/daily-backup-schedule.yaml", encoding: .utf8)
                .replacingOccurrences(of: "retention: 7", with: "retension: 7"))
            #expect(misspelt.status != 0)
            #expect(misspelt.stderr.contains("strict decoding error: unknown field \"spec.retension\""))

            let invalid = try await kubectl.run(["patch", "tebs", "daily-backup-schedule", "--type", "merge", "-p", #"{"spec":{"retention":0}}"#])
            #expect(invalid.status != 0)
            #expect(invalid.stderr.contains("spec.retention: Invalid value: 0: spec.retention in body should be greater than or equal to 1"))

            // A finalizer holds the delete until removed; kubectl wait sees it go.
            _ = try await kubectl.run(["patch", "tebs", "daily-backup-schedule", "--type", "merge", "-p", #"{"metadata":{"finalizers":["example.com/hold"]}}"#])
            let deleted = try await kubectl.run(["delete", "tebs", "daily-backup-schedule", "--wait=false"])
            #expect(deleted.stdout == "talosetcdbackupschedule.talos.alperen.cloud \"daily-backup-schedule\" deleted\n")
            let waiting = try await kubectl.start(["wait", "--for=delete", "tebs/daily-backup-schedule", "--timeout=20s"])
            try await Task.sleep(for: .milliseconds(300))
            let stillThere = try await kubectl.run(["get", "tebs", "daily-backup-schedule", "-o", "jsonpath={.metadata.deletionTimestamp}"])
            #expect(!stillThere.stdout.isEmpty)
            _ = try await kubectl.run(["patch", "tebs", "daily-backup-schedule", "--type", "merge", "-p", #"{"metadata":{"finalizers":null}}"#])
            let waited = try await waiting.finish()
            #expect(waited.status == 0, "\(waited.stderr)")
            #expect(waited.stdout.contains("condition met"))

            let none = try await kubectl.run(["get", "tebs"])
            #expect(none.stderr.contains("No resources found in default namespace."))
        }
    }
}
