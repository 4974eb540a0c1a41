import Foundation
import KubernetesClient
import KubernetesTesting
import TestSupport
import Testing

func write(_ text: String, to url: URL, executable: Bool = false) throws {
    try Data(text.utf8).write(to: url)
    if executable { try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: url.path) }
}

let pemCA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

@Suite("Kubeconfig and in-cluster configuration")
struct ConfigurationTests {
    @Test("KUBECONFIG files merge, the first to define a name wins, relative paths resolve against their file")
    func merging() throws {
        let directory = try makeTemporaryDirectory("kube")
        defer { removeTemporaryDirectory(directory) }
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("certs"), withIntermediateDirectories: true)
        try write(pemCA, to: directory.appendingPathComponent("certs/ca.crt"))
        try write("""
            apiVersion: v1
            kind: Config
            current-context: dev
            clusters:
            - name: dev
              cluster:
                server: https://dev.example:6443
                certificate-authority: certs/ca.crt
                tls-server-name: api.dev.example
            users:
            - name: dev
              user:
                token: first-token
            contexts:
            - name: dev
              context: {cluster: dev, user: dev, namespace: team-a}
            """, to: directory.appendingPathComponent("one.yaml"))
        try write("""
            current-context: prod
            clusters:
            - name: dev
              cluster: {server: https://ignored.example}
            - name: prod
              cluster: {server: https://prod.example, insecure-skip-tls-verify: true}
            users:
            - name: dev
              user: {token: ignored}
            contexts:
            - name: prod
              context: {cluster: prod, user: dev}
            """, to: directory.appendingPathComponent("two.yaml"))
        let paths = "\(directory.path)/one.yaml:\(directory.path)/missing.yaml:\(directory.path)/two.yaml"
        let dev = try Kubeconfig.load(environment: ["KUBECONFIG": paths])
        #expect(dev.server == "https://dev.example:6443")
        #expect(dev.namespace == "team-a")
        #expect(dev.tlsServerName == "api.dev.example")
        #expect(dev.certificateAuthorityPEM == Array(pemCA.utf8))
        guard case .token("first-token") = dev.credentials else { Issue.record("token"); return }

        let prod = try Kubeconfig.load(context: "prod", environment: ["KUBECONFIG": paths])
        #expect(prod.server == "https://prod.example")
        #expect(prod.insecureSkipTLSVerify)
        #expect(prod.namespace == "default")

        let home = try Kubeconfig.load(environment: ["HOME": directory.path, "KUBECONFIG": ""].merging(["KUBECONFIG": "\(directory.path)/one.yaml"]) { $1 })
        #expect(home.server == dev.server)
    }

    /// Yams' own error text quotes the line at fault, which in a kubeconfig can be a token.
    @Test("an invalid kubeconfig's error names the line, never quotes it")
    func invalidYAMLIsNotQuoted() throws {
        let directory = try makeTemporaryDirectory("kube")
        defer { removeTemporaryDirectory(directory) }
        let file = directory.appendingPathComponent("config")
        try write("users:\n- name: u\n  user:\n    token: sha256~secret-token-value: [\n", to: file)
        do {
            _ = try Kubeconfig.load(paths: [file.path])
            Issue.record("accepted a bad kubeconfig")
        } catch let error as ConfigurationError {
            #expect(!error.description.contains("secret-token-value"), "\(error)")
            #expect(error.description.contains("is not valid YAML (line 4"), "\(error)")
        }
    }

    @Test("errors name the file, the context and the field", arguments: [
        ("contexts:\n- name: c\n  context: {cluster: nope}\ncurrent-context: c\n", "context \"c\", contexts[c].cluster: no cluster named \"nope\""),
        ("clusters:\n- name: k\n  cluster: {}\ncontexts:\n- name: c\n  context: {cluster: k}\ncurrent-context: c\n", "context \"c\", clusters[k].server: required"),
        ("clusters:\n- name: k\n  cluster: {server: 'ftp://x'}\ncontexts:\n- name: c\n  context: {cluster: k}\ncurrent-context: c\n", "context \"c\", clusters[k].server: \"ftp://x\" is not an http(s) URL"),
        ("clusters:\n- name: k\n  cluster: {server: 'https://x', certificate-authority-data: '!!'}\ncontexts:\n- name: c\n  context: {cluster: k}\ncurrent-context: c\n", "context \"c\", clusters[k].certificate-authority-data: is not valid base64"),
        ("clusters:\n- name: k\n  cluster: {server: 'https://x'}\nusers:\n- name: u\n  user: {exec: {apiVersion: client.authentication.k8s.io/v1}}\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\ncurrent-context: c\n", "context \"c\", users[u].exec.command: required"),
        ("clusters:\n- name: k\n  cluster: {server: 'https://x'}\nusers:\n- name: u\n  user: {auth-provider: {name: gcp}}\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\ncurrent-context: c\n", "context \"c\", users[u].auth-provider: auth-provider plugins are not supported (kubectl removed them too); use an exec credential plugin"),
        ("clusters:\n- name: k\n  cluster: {server: 'https://x'}\nusers:\n- name: u\n  user: {client-certificate-data: \(Data(pemCA.utf8).base64EncodedString())}\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\ncurrent-context: c\n", "context \"c\", users[u]: client-certificate and client-key must be given together"),
        ("clusters: {}\n", "clusters: must be a list"),
        ("current-context: c\n", "context \"c\": no such context"),
        ("{", "is not valid YAML"),
    ])
    func errors(yaml: String, expected: String) throws {
        let directory = try makeTemporaryDirectory("kube")
        defer { removeTemporaryDirectory(directory) }
        let file = directory.appendingPathComponent("config")
        try write(yaml, to: file)
        do {
            _ = try Kubeconfig.load(paths: [file.path])
            Issue.record("accepted a bad kubeconfig")
        } catch let error as ConfigurationError {
            #expect(error.description.hasPrefix("kubeconfig \(file.path)"))
            #expect(error.description.contains(expected), "\(error)")
        }
    }

    @Test("no kubeconfig at all is a clear error")
    func missingFile() {
        #expect(throws: ConfigurationError(source: "kubeconfig /nonexistent/config", problem: "no such file")) {
            try Kubeconfig.load(paths: ["/nonexistent/config"])
        }
    }

    @Test("in-cluster: service host and port, CA, namespace, and a token re-read when it rotates")
    func inCluster() async throws {
        try await withServer(.init(authentication: .token("token-1"), logger: quietLogger("server"))) { server, _ in
            let directory = try makeTemporaryDirectory("kube")
            defer { removeTemporaryDirectory(directory) }
            try write("token-1\n", to: directory.appendingPathComponent("token"))
            try write(pemCA, to: directory.appendingPathComponent("ca.crt"))
            try write("backups\n", to: directory.appendingPathComponent("namespace"))
            let environment = ["KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": String(server.port)]
            var configuration = try InClusterConfiguration.load(environment: environment, directory: directory.path)
            #expect(configuration.server == "https://127.0.0.1:\(server.port)")
            #expect(configuration.namespace == "backups")
            #expect(configuration.certificateAuthorityPEM == Array(pemCA.utf8))
            // The test server speaks plain HTTP; keep everything else from the in-cluster load.
            configuration.server = server.url
            let client = try KubernetesClient(configuration: configuration, maxRetries: 0)
            _ = try await client.list(GenericObject.self, .namespaces)
            try await Task.sleep(for: .milliseconds(1100))  // a new modification time
            try write("token-2\n", to: directory.appendingPathComponent("token"))
            let rotated = await kubernetesError { _ = try await client.list(GenericObject.self, .namespaces) }
            #expect(rotated?.isUnauthorized == true)  // proves the new file content was sent
            try await client.shutdown()

            #expect(throws: ConfigurationError.self) { try InClusterConfiguration.load(environment: [:], directory: directory.path) }
            #expect(throws: ConfigurationError(source: "in-cluster configuration", field: "/nonexistent/token", problem: "service account token file is missing or unreadable")) {
                try InClusterConfiguration.load(environment: environment, directory: "/nonexistent")
            }
        }
    }

    @Test("exec credential plugins: token used, re-run after expiry, failures reported with the plugin's stderr")
    func execPlugin() async throws {
        try await withServer(.init(authentication: .token("from-plugin"), logger: quietLogger("server"))) { server, _ in
            let directory = try makeTemporaryDirectory("kube")
            defer { removeTemporaryDirectory(directory) }
            let counter = directory.appendingPathComponent("runs")
            let expiry = directory.appendingPathComponent("expiry")
            // Prints a token that expires at the offset the file `expiry` holds (`+1 hour`, or
            // `-1 minute`: already expired, so every request must run it again) and counts its
            // runs: nothing here depends on how fast a loaded machine is.
            let config = try execKubeconfig(server: server.url, script: """
                #!/bin/sh
                echo run >> "\(counter.path)"
                [ "$KUBERNETES_EXEC_INFO" != "" ] || { echo "no exec info" >&2; exit 3; }
                expiry=$(date -u -d "$(cat '\(expiry.path)')" +%Y-%m-%dT%H:%M:%SZ)
                printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s","expirationTimestamp":"%s"}}' "$TOKEN" "$expiry"
                """, in: directory, environment: ["TOKEN": "from-plugin"])
            func runs() throws -> Int { try String(contentsOf: counter, encoding: .utf8).split(separator: "\n").count }
            let configuration = try Kubeconfig.load(paths: [config])

            try write("+1 hour", to: expiry)
            let client = try KubernetesClient(configuration: configuration, maxRetries: 0)
            _ = try await client.list(GenericObject.self, .namespaces)
            _ = try await client.list(GenericObject.self, .namespaces)
            #expect(try runs() == 1, "cached until it expires")
            try await client.shutdown()

            try write("-1 minute", to: expiry)
            let expiring = try KubernetesClient(configuration: configuration, maxRetries: 0)
            _ = try await expiring.list(GenericObject.self, .namespaces)
            _ = try await expiring.list(GenericObject.self, .namespaces)
            #expect(try runs() == 3, "expired: run again for each request")
            try await expiring.shutdown()

            try write("#!/bin/sh\necho 'login required: run aws sso login' >&2\nexit 1\n", to: directory.appendingPathComponent("plugin.sh"), executable: true)
            let failing = try KubernetesClient(configuration: Kubeconfig.load(paths: [config]), maxRetries: 0)
            do {
                _ = try await failing.list(GenericObject.self, .namespaces)
                Issue.record("a failing plugin was accepted")
            } catch let error as ConfigurationError {
                #expect(error.description.contains("exited with status 1: login required: run aws sso login"))
            }
            try await failing.shutdown()
        }
    }

    /// A kubeconfig whose user runs `script` as its exec plugin, with `environment`. It runs
    /// through /bin/sh: executing a file just rewritten can fail with "text file busy" while
    /// another test's child process still holds the write descriptor. The shell is named
    /// relative to the kubeconfig's directory, which must resolve it.
    func execKubeconfig(server: String, script: String, in directory: URL, environment: [String: String] = [:]) throws -> String {
        let relativeShell = String(repeating: "../", count: directory.pathComponents.count - 1) + "bin/sh"
        try write(script, to: directory.appendingPathComponent("plugin.sh"), executable: true)
        let path = directory.appendingPathComponent("config")
        try write("""
            clusters:
            - name: k
              cluster: {server: '\(server)'}
            users:
            - name: u
              user:
                exec:
                  apiVersion: client.authentication.k8s.io/v1
                  command: \(relativeShell)
                  args: ['\(directory.appendingPathComponent("plugin.sh").path)']
                  env: [\(environment.map { "{name: \($0.key), value: \($0.value)}" }.joined(separator: ", "))]
            contexts:
            - name: c
              context: {cluster: k, user: u}
            current-context: c
            """, to: path)
        return path.path
    }

    @Test("exec plugins: more than a pipe holds on stdout and stderr, a plugin that hangs, concurrent callers share one run")
    func execPluginFailureModes() async throws {
        try await withServer(.init(authentication: .token("from-plugin"), logger: quietLogger("server"))) { server, _ in
            let directory = try makeTemporaryDirectory("kube")
            defer { removeTemporaryDirectory(directory) }
            let counter = directory.appendingPathComponent("runs")
            // 200 KiB of diagnostics and 200 KiB of leading white space before the credential.
            let chatty = try execKubeconfig(server: server.url, script: """
                #!/bin/sh
                echo run >> "\(counter.path)"
                sleep 0.5
                head -c 204800 /dev/zero | tr '\\0' 'x' >&2
                head -c 204800 /dev/zero | tr '\\0' ' '
                printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"from-plugin"}}'
                """, in: directory)
            var configuration = try Kubeconfig.load(paths: [chatty])
            configuration.requestTimeout = .seconds(20)
            let client = try KubernetesClient(configuration: configuration, maxRetries: 0)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<8 { group.addTask { _ = try await client.list(GenericObject.self, .namespaces) } }
                try await group.waitForAll()
            }
            #expect(try String(contentsOf: counter, encoding: .utf8).split(separator: "\n").count == 1, "eight concurrent requests, one plugin run")
            try await client.shutdown()

            let hanging = try execKubeconfig(server: server.url, script: "#!/bin/sh\nsleep 60\n", in: directory)
            var bounded = try Kubeconfig.load(paths: [hanging])
            bounded.requestTimeout = .seconds(2)
            let waiting = try KubernetesClient(configuration: bounded, maxRetries: 0)
            do {
                _ = try await waiting.list(GenericObject.self, .namespaces)
                Issue.record("a plugin that never finished was accepted")
            } catch let error as ConfigurationError {
                // The plugin sleeps 60 s and would then exit without a credential: only the
                // bound says this.
                #expect(error.description.contains("did not finish within 2"), "\(error)")
            }
            try await waiting.shutdown()
        }
    }
}
