import BackupOperator
import Waiting
import Foundation
import KubernetesClient
import KubernetesTesting
import Logging
import S3
import S3Responses
import S3TestSupport
import TalosAPI
import CustomResources
import TalosTesting
import TestSupport
import Testing

/// The test environment (docs/design.md, Test environment), running for one test: the
/// Kubernetes test server (with the CRDs, driven by kubectl), moto with authentication on, the
/// Talos test server on a real etcd holding keys k0..k19, and the operator started as separate
/// processes on a test clock. Each test gets its own namespace and S3 prefix.
struct Cluster: Sendable {
    /// Operator clock speed: `* * * * *` ticks every two real seconds.
    static let clockScale = 30.0
    /// Real seconds between ticks of `* * * * *`.
    static let tick = Duration.seconds(60 / clockScale)

    let client: KubernetesClient
    let kubectl: Kubectl
    let talos: TalosTestServer
    let s3: S3TestServer
    let s3Client: S3Client
    let namespace: String
    let prefix: String
    let epoch: Date
    let directory: URL

    /// `s3Server` names the S3 test server (scripts/s3-test-services.py): moto with
    /// authentication (`AUTH`) or Ceph RGW (`RGW`); `lockedBucket`: its bucket created with
    /// Object Lock instead of the plain one.
    static func with<T: Sendable>(s3Server: String = "AUTH", lockedBucket: Bool = false, _ body: (Cluster) async throws -> T) async throws -> T {
        try await TalosTestServer.withRunningOnFreshEtcd { talos in
            try await KubernetesTestServer.withRunning(.init(logger: quietLogger("kubernetes-test-server"))) { kubernetes in
                let directory = try makeDirectory()
                let kubeconfig = directory.appendingPathComponent("kubeconfig").path
                try kubernetes.writeKubeconfig(to: kubeconfig)
                return try await with(talos: talos, kubeconfig: kubeconfig, directory: directory, s3Server: s3Server, lockedBucket: lockedBucket, body)
            }
        }
    }

    /// The same, with the Kubernetes test server as a separate process that a test can kill,
    /// freeze (SIGSTOP) and restart.
    static func withAPIServerProcess<T: Sendable>(_ body: (Cluster, APIServerProcess) async throws -> T) async throws -> T {
        try await TalosTestServer.withRunningOnFreshEtcd { talos in
            let directory = try makeDirectory()
            let apiServer = try await APIServerProcess.start(kubeconfig: directory.appendingPathComponent("kubeconfig").path)
            do {
                let result = try await with(talos: talos, kubeconfig: apiServer.kubeconfig, directory: directory) { try await body($0, apiServer) }
                await apiServer.stop()
                return result
            } catch {
                await apiServer.stop()
                throw error
            }
        }
    }

    private static func makeDirectory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("e2e-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    private static func with<T: Sendable>(talos: TalosTestServer, kubeconfig: String, directory: URL, s3Server: String = "AUTH",
                                          lockedBucket: Bool = false, _ body: (Cluster) async throws -> T) async throws -> T {
        // Nothing that needs a shutdown exists before every check that can fail has passed
        // (a client dropped without shutdown traps).
        let s3 = lockedBucket ? try S3TestServer.named(s3Server).lockedBucket : try S3TestServer.named(s3Server)
        let configuration = try Kubeconfig.load(paths: [kubeconfig])
        let s3Client = try s3.client()
        let client: KubernetesClient
        do {
            client = try KubernetesClient(configuration: configuration, logger: quietLogger("client"))
        } catch {
            try? await s3Client.shutdown()
            throw error
        }
        let suffix = UUID().uuidString.prefix(6).lowercased()
        let cluster = Cluster(
            client: client, kubectl: Kubectl(kubeconfig: kubeconfig), talos: talos,
            s3: s3, s3Client: s3Client, namespace: "e2e-\(suffix)", prefix: "e2e-\(suffix)", epoch: Date(), directory: directory)
        do {
            try await cluster.installCRDsAndNamespace()
            let result = try await body(cluster)
            try? await s3Client.shutdown()
            try? await client.shutdown()
            // A passed test's files (snapshots, restored copies, logs) go; a failed one's stay
            // for a look.
            try? FileManager.default.removeItem(at: directory)
            return result
        } catch {
            try? await s3Client.shutdown()
            try? await client.shutdown()
            throw error
        }
    }

    /// The CRDs (with kubectl, from deploy/crds) and this test's namespace: what an API server
    /// that lost its state needs again.
    func installCRDsAndNamespace() async throws {
        let crds = try await kubectl.run(["apply", "-k", repositoryRoot.appendingPathComponent("deploy/crds").path])
        try #require(crds.status == 0, "kubectl apply of the CRDs failed: \(crds.stderr)")
        let created = try await kubectl.run(["apply", "-f", "-"], stdin: "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: \(namespace)\n")
        try #require(created.status == 0, "kubectl apply of the namespace failed: \(created.stderr)")
    }

    // MARK: The operator

    /// Runs `body` with an operator process watching this test's namespace; stops it with
    /// SIGTERM afterwards and prints its log when the body failed.
    func withOperator<T: Sendable>(
        name: String = "operator-a", leaseNamespace: String? = nil, arguments: [String] = [], image: String? = nil,
        environment: [String: String] = [:], _ body: (ProcessRunner.Running) async throws -> T
    ) async throws -> T {
        let process = try await startOperator(name: name, leaseNamespace: leaseNamespace, arguments: arguments, image: image,
                                              environment: environment)
        do {
            let result = try await body(process)
            process.send(SIGTERM)
            _ = try await Self.exit(of: process, within: .seconds(15))
            return result
        } catch {
            process.send(SIGTERM)
            let output = try? await Self.exit(of: process, within: .seconds(15))
            print("---- \(name) log ----\n\(output?.stderr ?? process.stderrSoFar)")
            throw error
        }
    }

    /// The process's result once it has exited; fails (and kills it) if that takes longer than `limit`.
    static func exit(of process: ProcessRunner.Running, within limit: Duration) async throws -> ProcessRunner.Result {
        do {
            return try await withDeadline(limit, "the operator's exit") { try await process.finish() }
        } catch {
            process.send(SIGKILL)
            throw error
        }
    }

    /// Starts the operator binary, or with `image`, the operator in that container image under
    /// podman as a cluster runs it (``ContainerImage/runArguments``), seeing this test's
    /// directory (the kubeconfig) at the same path.
    /// `extraEnvironment` is added to the binary's environment (not passed into a container).
    func startOperator(name: String, leaseDurationSeconds: Int = 3, leaseNamespace: String? = nil, arguments: [String] = [],
                       image: String? = nil, environment extraEnvironment: [String: String] = [:]) async throws -> ProcessRunner.Running {
        var environment = ProcessInfo.processInfo.environment.merging(extraEnvironment) { $1 }
        environment["POD_NAME"] = name
        var command = [TestHelpers.builtProduct("talos-etcd-backup").path]
        if let image {
            environment["CONTAINERS_CONF"] = ContainerImage.containersConf
            command = ["/usr/bin/podman", "run", "--rm", "--name", "\(name)-\(namespace)", "-e", "POD_NAME=\(name)",
                       "-v", "\(directory.path):\(directory.path):ro"] + ContainerImage.runArguments + [image]
        }
        return try await ProcessRunner.start(command[0], Array(command.dropFirst()) + [
            "run", "--kubeconfig", kubectl.kubeconfig, "--namespace", namespace,
            "--leader-election-namespace", leaseNamespace ?? namespace, "--lease-duration-seconds", String(leaseDurationSeconds), "--log-level", "debug",
            "--clock-scale", "\(Self.clockScale)", "--clock-epoch", KubeTime(epoch).description,
            // Several operators run side by side here: each its own probe and metrics ports.
            "--health-probe-bind-address", "127.0.0.1:\(TestHelpers.freePort())",
            "--metrics-bind-address", "127.0.0.1:\(TestHelpers.freePort())",
        ] + arguments, environment: environment)
    }

    // MARK: Manifests

    /// The seed's S3 credentials Secret, the control plane's talosconfig Secret, and a schedule,
    /// as one YAML document stream for `kubectl apply -f -`.
    func manifests(schedule name: String, cron: String, retention: Int = 2, extraSpec: String = "",
                   secretAccessKey: String? = nil, talosconfig: String? = nil) throws -> String {
        let config = try talosconfig ?? talos.talosconfig(role: "os:etcd:backup")
        return """
            apiVersion: v1
            kind: Secret
            metadata:
              name: my-s3-credentials
            type: Opaque
            stringData:
              accessKeyID: "\(s3.credentials.accessKeyID)"
              secretAccessKey: "\(secretAccessKey ?? s3.credentials.secretAccessKey)"
            ---
            \(talosconfigSecret(controlPlane: "my-controlplane", config))
            ---
            apiVersion: talos.alperen.cloud/v1alpha1
            kind: TalosEtcdBackupSchedule
            metadata:
              name: \(name)
            spec:
              schedule: "\(cron)"
              retention: \(retention)
            \(extraSpec)
              backupTemplate:
                spec:
                  talosControlPlaneRef:
                    name: my-controlplane
                  backupStorage:
                    s3:
                      bucket: \(s3.bucket)
                      region: \(s3.region)
                      endpoint: \(s3.endpoint)
                      insecureHTTP: \(s3.endpoint.hasPrefix("http://"))
                      prefix: \(prefix)
                      accessKeyID:
                        name: my-s3-credentials
                        key: accessKeyID
                      secretAccessKey:
                        name: my-s3-credentials
                        key: secretAccessKey

            """
    }

    /// Secret `<controlPlane>-talosconfig` holding `talosconfig` under key `talosconfig`.
    /// talos-operator's state Secret `my-controlplane-state` (labelled as a state, so the
    /// operator stores it beside each snapshot) holding `data`.
    func stateSecret(_ data: [(key: String, value: String)]) -> String {
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: my-controlplane-state\n  labels:\n    talos.alperen.cloud/type: state\ntype: Opaque\nstringData:\n"
            + data.map { "  \($0.key): \"\($0.value)\"\n" }.joined()
    }

    func talosconfigSecret(controlPlane: String, _ talosconfig: String) -> String {
        let indented = talosconfig.split(separator: "\n", omittingEmptySubsequences: false).map { "    " + $0 }.joined(separator: "\n")
        return "apiVersion: v1\nkind: Secret\nmetadata:\n  name: \(controlPlane)-talosconfig\ntype: Opaque\nstringData:\n  talosconfig: |\n\(indented)"
    }

    /// A lone backup of control plane `controlPlane` (its talosconfig Secret is
    /// `<controlPlane>-talosconfig`), reading S3 keys from Secret `credentials` (nil: no keys,
    /// for the operator's ambient credentials).
    /// `extraS3` is more of `backupStorage.s3`, each line indented by two spaces.
    func backupManifest(_ name: String, controlPlane: String = "my-controlplane", credentials: String? = "my-s3-credentials",
                        accessKeyIDKey: String = "accessKeyID", extraS3: String = "") -> String {
        let keys = credentials.map { credentials in
            """
                  accessKeyID:
                    name: \(credentials)
                    key: \(accessKeyIDKey)
                  secretAccessKey:
                    name: \(credentials)
                    key: secretAccessKey

            """
        } ?? ""
        return """
        apiVersion: talos.alperen.cloud/v1alpha1
        kind: TalosEtcdBackup
        metadata:
          name: \(name)
        spec:
          talosControlPlaneRef:
            name: \(controlPlane)
          backupStorage:
            s3:
              bucket: \(s3.bucket)
              region: \(s3.region)
              endpoint: \(s3.endpoint)
              insecureHTTP: \(s3.endpoint.hasPrefix("http://"))
              prefix: \(prefix)
        \(keys)\(extraS3.split(separator: "\n").map { "      " + $0 + "\n" }.joined())
        """
    }

    func apply(_ yaml: String) async throws {
        let result = try await kubectl.run(["apply", "-n", namespace, "-f", "-"], stdin: yaml)
        try #require(result.status == 0, "kubectl apply failed: \(result.stderr)")
    }

    func kubectlOK(_ arguments: [String]) async throws -> String {
        let result = try await kubectl.run(["-n", namespace] + arguments)
        // Only the verb: arguments may hold Secret data.
        try #require(result.status == 0, "kubectl \(arguments.first ?? "") failed: \(result.stderr)")
        return result.stdout
    }

    // MARK: Observations

    func backups() async throws -> [TalosEtcdBackup] {
        try await client.listAll(TalosEtcdBackup.self, TalosEtcdBackup.resourceType, namespace: namespace).items
            .sorted { ($0.metadata.name ?? "") < ($1.metadata.name ?? "") }
    }

    func backup(_ name: String) async throws -> TalosEtcdBackup? {
        try await backups().first { $0.metadata.name == name }
    }

    func schedule(_ name: String) async throws -> TalosEtcdBackupSchedule {
        try await client.get(TalosEtcdBackupSchedule.self, TalosEtcdBackupSchedule.resourceType, namespace: namespace, name: name)
    }

    /// Objects under this test's prefix.
    func objects() async throws -> [String] {
        try await s3Client.listAllObjects(bucket: s3.bucket, prefix: prefix).map(\.key).sorted()
    }

    /// Multipart uploads in progress under this test's prefix.
    func uploads() async throws -> [S3MultipartUploadInfo] {
        try await s3Client.listMultipartUploads(bucket: s3.bucket, prefix: prefix)
    }

    struct RecordedEvent: Sendable {
        var type: String
        var reason: String
        var note: String
        var regarding: String
    }

    /// The Events in this test's namespace, or in `other` (`events.k8s.io/v1`, as `kubectl
    /// events` shows); `regarding` is the name of the object regarded, else of the related one.
    func events(in other: String? = nil) async throws -> [RecordedEvent] {
        try await client.listAll(GenericObject.self, .events, namespace: other ?? namespace).items.map { event in
            let raw = event.raw
            func text(_ key: String) -> String { if case .string(let value)? = raw[key] { value } else { "" } }
            var regarding = ""
            if case .object(let object)? = raw["regarding"], case .string(let name)? = object["name"] { regarding = name }
            if case .object(let object)? = raw["related"], case .string(let name)? = object["name"] { regarding = name }
            return RecordedEvent(type: text("type"), reason: text("reason"), note: text("note"), regarding: regarding)
        }
    }

    /// Waits (at most `timeout`) for `condition`, polling every 100 ms.
    func waitFor(_ what: String, timeout: Duration = .seconds(120), sourceLocation: SourceLocation = #_sourceLocation,
                 _ condition: () async throws -> Bool) async throws {
        try await eventually(timeout: timeout, what, sourceLocation: sourceLocation) {
            try await Task.sleep(for: .milliseconds(100))
            return try await condition()
        }
    }

    /// Downloads `key` with boto3 and restores it with `etcdctl snapshot restore` into a fresh
    /// etcd; returns the value of k7 there.
    func restoreAndRead(_ key: String) async throws -> (size: Int64, sha256: String, k7: String) {
        let file = directory.appendingPathComponent("restore-\(UUID().uuidString.prefix(8)).db")
        let (size, sha256) = try await s3.readBack(key, saveTo: file)
        let status = try await EtcdInstance.etcdctl(offline: ["snapshot", "status", file.path])
        try #require(status.status == 0, "etcdctl snapshot status: \(status.stderr)")
        let value = try await EtcdInstance.restoring(file).stopping { try await $0.etcdctl(["get", "k7", "--print-value-only"]) }
        return (size, sha256, value.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}

extension TalosEtcdBackup {
    var phase: BackupPhase? { status?.phase }
    func condition(_ type: String) -> Condition? { status?.conditions?[type: type] }
}

extension TalosEtcdBackupSchedule {
    func condition(_ type: String) -> Condition? { status?.conditions?[type: type] }
}
