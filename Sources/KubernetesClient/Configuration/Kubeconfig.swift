import ConfigurationFiles
import Foundation
import Yams

/// Reads kubeconfig files as kubectl does: the files of `KUBECONFIG` (colon-separated) merged,
/// where the first file to define a cluster, user, context or `current-context` wins, else
/// `~/.kube/config`; then the chosen context (the `--context` override or `current-context`).
/// Relative file paths in a file are relative to that file. Errors name the file, the context
/// and the field.
public enum Kubeconfig {
    public static func load(
        context override: String? = nil,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> KubernetesConfiguration {
        let paths: [String]
        if let list = environment["KUBECONFIG"], !list.isEmpty {
            paths = list.split(separator: ":").map(String.init).filter { !$0.isEmpty }
        } else {
            let home = environment["HOME"] ?? NSHomeDirectory()
            paths = [home + "/.kube/config"]
        }
        return try load(paths: paths, context: override)
    }

    public static func load(paths: [String], context override: String? = nil) throws -> KubernetesConfiguration {
        var merged = MergedConfig()
        var readAny = false
        for path in paths {
            guard FileManager.default.fileExists(atPath: path) else { continue }
            readAny = true
            try merged.add(file: path)
        }
        let described = paths.joined(separator: ":")
        guard readAny else {
            throw ConfigurationError(source: "kubeconfig \(described)", problem: "no such file")
        }
        guard let contextName = override ?? merged.currentContext, !contextName.isEmpty else {
            throw ConfigurationError(source: "kubeconfig \(described)", field: "current-context", problem: "not set and no context was given")
        }
        guard let context = merged.contexts[contextName] else {
            throw ConfigurationError(source: "kubeconfig \(described)", context: contextName, problem: "no such context")
        }
        return try resolve(context: context, named: contextName, merged: merged)
    }

    // MARK: Reading

    struct Entry {
        var fields: [String: Any]
        var file: String
        var directory: String { (file as NSString).deletingLastPathComponent }
    }

    struct MergedConfig {
        var currentContext: String?
        var clusters: [String: Entry] = [:]
        var users: [String: Entry] = [:]
        var contexts: [String: Entry] = [:]

        mutating func add(file: String) throws {
            let source = "kubeconfig \(file)"
            let text: String
            do {
                text = try String(contentsOfFile: file, encoding: .utf8)
            } catch {
                throw ConfigurationError(source: source, problem: "cannot be read: \(error.localizedDescription)")
            }
            let document: Any?
            do {
                document = try Yams.load(yaml: text)
            } catch {
                throw ConfigurationError(source: source, problem: "is not valid YAML: \(error)")
            }
            guard let root = document as? [String: Any] else {
                if document == nil { return }  // an empty file contributes nothing, as in kubectl
                throw ConfigurationError(source: source, problem: "is not a YAML mapping")
            }
            if currentContext == nil || currentContext == "", let current = root["current-context"] as? String, !current.isEmpty {
                currentContext = current
            }
            try addNamed(root["clusters"], key: "cluster", list: "clusters", file: file, into: &clusters)
            try addNamed(root["users"], key: "user", list: "users", file: file, into: &users)
            try addNamed(root["contexts"], key: "context", list: "contexts", file: file, into: &contexts)
        }

        private func addNamed(_ value: Any?, key: String, list: String, file: String, into map: inout [String: Entry]) throws {
            guard let value else { return }
            guard let items = value as? [Any] else {
                throw ConfigurationError(source: "kubeconfig \(file)", field: list, problem: "must be a list")
            }
            for (index, item) in items.enumerated() {
                guard let named = item as? [String: Any], let name = named["name"] as? String, !name.isEmpty else {
                    throw ConfigurationError(source: "kubeconfig \(file)", field: "\(list)[\(index)].name", problem: "required")
                }
                if map[name] != nil { continue }  // first file wins
                let fields = named[key] as? [String: Any] ?? [:]
                map[name] = Entry(fields: fields, file: file)
            }
        }
    }

    // MARK: Resolving a context

    static func resolve(context: Entry, named contextName: String, merged: MergedConfig) throws -> KubernetesConfiguration {
        func fail(_ file: String, _ field: String?, _ problem: String) -> ConfigurationError {
            ConfigurationError(source: "kubeconfig \(file)", context: contextName, field: field, problem: problem)
        }
        guard let clusterName = context.fields["cluster"] as? String, !clusterName.isEmpty else {
            throw fail(context.file, "contexts[\(contextName)].cluster", "required")
        }
        guard let cluster = merged.clusters[clusterName] else {
            throw fail(context.file, "contexts[\(contextName)].cluster", "no cluster named \"\(clusterName)\"")
        }
        let clusterField = "clusters[\(clusterName)]"
        guard let server = cluster.fields["server"] as? String, !server.isEmpty else {
            throw fail(cluster.file, "\(clusterField).server", "required")
        }
        guard let url = URL(string: server), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil else {
            throw fail(cluster.file, "\(clusterField).server", "\"\(server)\" is not an http(s) URL")
        }
        var configuration = KubernetesConfiguration(server: server, source: "kubeconfig \(context.file), context \(contextName)")
        configuration.insecureSkipTLSVerify = cluster.fields["insecure-skip-tls-verify"] as? Bool ?? false
        configuration.tlsServerName = cluster.fields["tls-server-name"] as? String
        configuration.certificateAuthorityPEM = try pem(
            in: cluster, dataKey: "certificate-authority-data", fileKey: "certificate-authority",
            field: clusterField, fail: fail)
        if let namespace = context.fields["namespace"] as? String, !namespace.isEmpty {
            configuration.namespace = namespace
        }

        guard let userName = context.fields["user"] as? String, !userName.isEmpty else {
            return configuration  // anonymous
        }
        guard let user = merged.users[userName] else {
            throw fail(context.file, "contexts[\(contextName)].user", "no user named \"\(userName)\"")
        }
        let userField = "users[\(userName)]"
        configuration.clientCertificatePEM = try pem(
            in: user, dataKey: "client-certificate-data", fileKey: "client-certificate", field: userField, fail: fail)
        configuration.clientKeyPEM = try pem(
            in: user, dataKey: "client-key-data", fileKey: "client-key", field: userField, fail: fail)
        if (configuration.clientCertificatePEM == nil) != (configuration.clientKeyPEM == nil) {
            throw fail(user.file, userField, "client-certificate and client-key must be given together")
        }
        if user.fields["auth-provider"] != nil {
            throw fail(user.file, "\(userField).auth-provider", "auth-provider plugins are not supported (kubectl removed them too); use an exec credential plugin")
        }
        if user.fields["username"] != nil || user.fields["password"] != nil {
            throw fail(user.file, "\(userField).username", "basic authentication is not supported by Kubernetes any more; use a token or a client certificate")
        }
        if let token = user.fields["token"] as? String, !token.isEmpty {
            configuration.credentials = .token(token)
        } else if let tokenFile = user.fields["tokenFile"] as? String, !tokenFile.isEmpty {
            let path = absolute(tokenFile, relativeTo: user.directory)
            guard FileManager.default.isReadableFile(atPath: path) else {
                throw fail(user.file, "\(userField).tokenFile", "\(path) is missing or unreadable")
            }
            configuration.credentials = .tokenFile(path)
        } else if let exec = user.fields["exec"] {
            configuration.credentials = .exec(try execPlugin(exec, user: user, field: "\(userField).exec", fail: fail))
        }
        return configuration
    }

    static func execPlugin(
        _ value: Any, user: Entry, field: String, fail: (String, String?, String) -> ConfigurationError
    ) throws -> ExecCredentialPlugin {
        guard let exec = value as? [String: Any] else { throw fail(user.file, field, "must be a mapping") }
        guard let command = exec["command"] as? String, !command.isEmpty else {
            throw fail(user.file, "\(field).command", "required")
        }
        let apiVersion = exec["apiVersion"] as? String ?? ""
        guard ["client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"].contains(apiVersion) else {
            throw fail(user.file, "\(field).apiVersion", "\"\(apiVersion)\" is not supported; use client.authentication.k8s.io/v1")
        }
        let arguments = (exec["args"] as? [Any] ?? []).map { "\($0)" }
        var environment: [String: String] = [:]
        for (index, item) in (exec["env"] as? [Any] ?? []).enumerated() {
            guard let pair = item as? [String: Any], let name = pair["name"] as? String else {
                throw fail(user.file, "\(field).env[\(index)].name", "required")
            }
            environment[name] = pair["value"].map { "\($0)" } ?? ""
        }
        return ExecCredentialPlugin(apiVersion: apiVersion, command: command, arguments: arguments, environment: environment, baseDirectory: user.directory)
    }

    /// PEM bytes from `<dataKey>` (base64) or the file named by `<fileKey>`.
    static func pem(
        in entry: Entry, dataKey: String, fileKey: String, field: String,
        fail: (String, String?, String) -> ConfigurationError
    ) throws -> [UInt8]? {
        if let data = entry.fields[dataKey] as? String, !data.isEmpty {
            guard let decoded = Data(base64Encoded: data.filter { !$0.isWhitespace }) else {
                throw fail(entry.file, "\(field).\(dataKey)", "is not valid base64")
            }
            guard String(decoding: decoded, as: UTF8.self).contains("-----BEGIN ") else {
                throw fail(entry.file, "\(field).\(dataKey)", "does not hold PEM data")
            }
            return Array(decoded)
        }
        if let file = entry.fields[fileKey] as? String, !file.isEmpty {
            let path = absolute(file, relativeTo: entry.directory)
            guard let contents = FileManager.default.contents(atPath: path) else {
                throw fail(entry.file, "\(field).\(fileKey)", "\(path) is missing or unreadable")
            }
            return Array(contents)
        }
        return nil
    }

    static func absolute(_ path: String, relativeTo directory: String) -> String {
        path.hasPrefix("/") ? path : (directory as NSString).appendingPathComponent(path)
    }
}
