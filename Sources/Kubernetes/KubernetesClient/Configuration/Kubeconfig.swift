import ConfigurationFiles
import Foundation
import KubeconfigDocument

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
            try add(file: path, to: &merged)
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

    // The document's types and the merge, read without I/O in KubeconfigDocument.
    typealias User = KubeconfigDocument.User
    typealias Context = KubeconfigDocument.Context
    typealias Exec = KubeconfigDocument.Exec
    typealias Entry = KubeconfigDocument.Entry
    typealias MergedConfig = KubeconfigDocument.Merged

    /// Adds the file at `path` to `merged`.
    static func add(file path: String, to merged: inout MergedConfig) throws {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigurationError(source: "kubeconfig \(path)", problem: "cannot be read: \(error.localizedDescription)")
        }
        try merged.add(text: text, file: path)
    }

    // MARK: Resolving a context

    static func resolve(context: Entry<Context>, named contextName: String, merged: MergedConfig) throws -> KubernetesConfiguration {
        func fail(_ file: String, _ field: String?, _ problem: String) -> ConfigurationError {
            ConfigurationError(source: "kubeconfig \(file)", context: contextName, field: field, problem: problem)
        }
        guard let clusterName = context.fields.cluster, !clusterName.isEmpty else {
            throw fail(context.file, "contexts[\(contextName)].cluster", "required")
        }
        guard let cluster = merged.clusters[clusterName] else {
            throw fail(context.file, "contexts[\(contextName)].cluster", "no cluster named \"\(clusterName)\"")
        }
        let clusterField = "clusters[\(clusterName)]"
        guard let server = cluster.fields.server, !server.isEmpty else {
            throw fail(cluster.file, "\(clusterField).server", "required")
        }
        guard let url = URL(string: server), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil else {
            throw fail(cluster.file, "\(clusterField).server", "\"\(server)\" is not an http(s) URL")
        }
        var configuration = KubernetesConfiguration(server: server, source: "kubeconfig \(context.file), context \(contextName)")
        configuration.insecureSkipTLSVerify = cluster.fields.insecureSkipTLSVerify ?? false
        configuration.tlsServerName = cluster.fields.tlsServerName
        configuration.certificateAuthorityPEM = try pem(
            data: (cluster.fields.certificateAuthorityData, "certificate-authority-data"), file: (cluster.fields.certificateAuthority, "certificate-authority"),
            of: cluster, field: clusterField, fail: fail)
        if let namespace = context.fields.namespace, !namespace.isEmpty {
            configuration.namespace = namespace
        }

        guard let userName = context.fields.user, !userName.isEmpty else {
            return configuration  // anonymous
        }
        guard let user = merged.users[userName] else {
            throw fail(context.file, "contexts[\(contextName)].user", "no user named \"\(userName)\"")
        }
        let userField = "users[\(userName)]"
        configuration.clientCertificatePEM = try pem(
            data: (user.fields.clientCertificateData, "client-certificate-data"), file: (user.fields.clientCertificate, "client-certificate"),
            of: user, field: userField, fail: fail)
        configuration.clientKeyPEM = try pem(
            data: (user.fields.clientKeyData, "client-key-data"), file: (user.fields.clientKey, "client-key"),
            of: user, field: userField, fail: fail)
        if (configuration.clientCertificatePEM == nil) != (configuration.clientKeyPEM == nil) {
            throw fail(user.file, userField, "client-certificate and client-key must be given together")
        }
        if user.fields.authProvider != nil {
            throw fail(user.file, "\(userField).auth-provider", "auth-provider plugins are not supported (kubectl removed them too); use an exec credential plugin")
        }
        if user.fields.username != nil || user.fields.password != nil {
            throw fail(user.file, "\(userField).username", "basic authentication is not supported by Kubernetes any more; use a token or a client certificate")
        }
        if let token = user.fields.token, !token.isEmpty {
            configuration.credentials = .token(token)
        } else if let tokenFile = user.fields.tokenFile, !tokenFile.isEmpty {
            let path = absolute(tokenFile, relativeTo: user.directory)
            guard FileManager.default.isReadableFile(atPath: path) else {
                throw fail(user.file, "\(userField).tokenFile", "\(path) is missing or unreadable")
            }
            configuration.credentials = .tokenFile(path)
        } else if let exec = user.fields.exec {
            configuration.credentials = .exec(try execPlugin(exec, user: user, field: "\(userField).exec", fail: fail))
        }
        return configuration
    }

    static func execPlugin(
        _ exec: Exec, user: Entry<User>, field: String, fail: (String, String?, String) -> ConfigurationError
    ) throws -> ExecCredentialPlugin {
        guard let command = exec.command, !command.isEmpty else {
            throw fail(user.file, "\(field).command", "required")
        }
        let apiVersion = exec.apiVersion ?? ""
        guard ["client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"].contains(apiVersion) else {
            throw fail(user.file, "\(field).apiVersion", "\"\(apiVersion)\" is not supported; use client.authentication.k8s.io/v1")
        }
        var environment: [String: String] = [:]
        for (index, variable) in (exec.env ?? []).enumerated() {
            guard let name = variable.name else { throw fail(user.file, "\(field).env[\(index)].name", "required") }
            environment[name] = variable.value ?? ""
        }
        return ExecCredentialPlugin(apiVersion: apiVersion, command: command, arguments: exec.args ?? [], environment: environment,
                                    baseDirectory: user.directory)
    }

    /// PEM bytes from `data` (base64) or the file `file` names, with their field names.
    static func pem<Fields>(
        data: (value: String?, key: String), file: (value: String?, key: String), of entry: Entry<Fields>, field: String,
        fail: (String, String?, String) -> ConfigurationError
    ) throws -> [UInt8]? {
        if let encoded = data.value, !encoded.isEmpty {
            guard let decoded = Data(base64Encoded: encoded.filter { !$0.isWhitespace }) else {
                throw fail(entry.file, "\(field).\(data.key)", "is not valid base64")
            }
            guard String(decoding: decoded, as: UTF8.self).contains("-----BEGIN ") else {
                throw fail(entry.file, "\(field).\(data.key)", "does not hold PEM data")
            }
            return Array(decoded)
        }
        if let name = file.value, !name.isEmpty {
            let path = absolute(name, relativeTo: entry.directory)
            guard let contents = FileManager.default.contents(atPath: path) else {
                throw fail(entry.file, "\(field).\(file.key)", "\(path) is missing or unreadable")
            }
            return Array(contents)
        }
        return nil
    }

    static func absolute(_ path: String, relativeTo directory: String) -> String {
        path.hasPrefix("/") ? path : (directory as NSString).appendingPathComponent(path)
    }
}
