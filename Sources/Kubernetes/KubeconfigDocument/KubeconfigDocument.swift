import ConfigurationFiles
import Foundation

/// A kubeconfig file's contents and the merge of several (`KUBECONFIG=a:b`), read without
/// I/O: what the Kubernetes client's `Kubeconfig` resolves into a configuration, in a module of
/// its own so that the fuzz target (`FuzzKubeconfig`) reads kubeconfigs exactly as the client
/// does, without the HTTP stack. kubectl's `clientcmdapi/v1` names and shapes.
public enum KubeconfigDocument {
    /// A kubeconfig file as kubectl's `clientcmdapi/v1` types describe it (the fields this
    /// client reads; others are ignored, as kubectl ignores what it does not know).
    public struct File: Decodable {
        public var currentContext: String?
        public var clusters: [Named<Cluster>]?
        public var users: [Named<User>]?
        public var contexts: [Named<Context>]?

        public enum CodingKeys: String, CodingKey {
            case currentContext = "current-context", clusters, users, contexts
        }
    }

    /// `{name: ..., <kind>: {...}}`, the shape of every list entry.
    public struct Named<Fields: NamedFields>: Decodable {
        public var name: String?
        public var fields: Fields?

        public struct Key: CodingKey {
            public var stringValue: String
            public var intValue: Int? { nil }
            public init(_ string: String) { stringValue = string }
            public init?(stringValue: String) { self.stringValue = stringValue }
            public init?(intValue: Int) { nil }
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: Key.self)
            name = try container.decodeIfPresent(String.self, forKey: Key("name"))
            fields = try container.decodeIfPresent(Fields.self, forKey: Key(Fields.entryKey))
        }
    }

    public protocol NamedFields: Decodable, Sendable {
        /// The key next to `name`: `cluster`, `user` or `context`.
        static var entryKey: String { get }
        init()
    }

    public struct Cluster: NamedFields, Sendable {
        public static let entryKey = "cluster"
        public init() {}
        public var server: String?
        public var certificateAuthority: String?
        public var certificateAuthorityData: String?
        public var insecureSkipTLSVerify: Bool?
        public var tlsServerName: String?

        public enum CodingKeys: String, CodingKey {
            case server, certificateAuthority = "certificate-authority", certificateAuthorityData = "certificate-authority-data"
            case insecureSkipTLSVerify = "insecure-skip-tls-verify", tlsServerName = "tls-server-name"
        }
    }

    public struct User: NamedFields, Sendable {
        public static let entryKey = "user"
        public init() {}
        public var clientCertificate: String?
        public var clientCertificateData: String?
        public var clientKey: String?
        public var clientKeyData: String?
        public var token: String?
        public var tokenFile: String?
        public var exec: Exec?
        public var authProvider: Present?
        public var username: String?
        public var password: String?

        public enum CodingKeys: String, CodingKey {
            case clientCertificate = "client-certificate", clientCertificateData = "client-certificate-data"
            case clientKey = "client-key", clientKeyData = "client-key-data"
            case token, tokenFile, exec, authProvider = "auth-provider", username, password
        }
    }

    public struct Exec: Decodable, Sendable {
        public var apiVersion: String?
        public var command: String?
        public var args: [String]?
        public var env: [Variable]?

        public struct Variable: Decodable, Sendable {
            public var name: String?
            public var value: String?
        }
    }

    public struct Context: NamedFields, Sendable {
        public static let entryKey = "context"
        public init() {}
        public var cluster: String?
        public var user: String?
        public var namespace: String?
    }

    /// A field whose presence is all that matters.
    public struct Present: Decodable, Sendable {
        public init(from decoder: any Decoder) throws {}
    }

    /// One cluster, user or context, and the file it came from (relative paths in it are
    /// relative to that file).
    public struct Entry<Fields: Sendable>: Sendable {
        public var fields: Fields
        public var file: String
        public var directory: String { (file as NSString).deletingLastPathComponent }
    }

    /// Several files merged as kubectl merges the files of `KUBECONFIG`.
    public struct Merged: Sendable {
        public var currentContext: String?
        public var clusters: [String: Entry<Cluster>] = [:]
        public var users: [String: Entry<User>] = [:]
        public var contexts: [String: Entry<Context>] = [:]

        public init() {}

        /// Adds the document `text` of the file `file` (its path: relative paths in it are
        /// relative to its directory). The first file to define a name, or `current-context`, wins.
        public mutating func add(text: String, file: String) throws {
            // An empty file contributes nothing, as in kubectl.
            guard let contents = try YAMLConfiguration.decode(File.self, from: text, source: "kubeconfig \(file)") else { return }
            if currentContext == nil || currentContext == "", let current = contents.currentContext, !current.isEmpty {
                currentContext = current
            }
            try Self.addNamed(contents.clusters, list: "clusters", file: file, into: &clusters)
            try Self.addNamed(contents.users, list: "users", file: file, into: &users)
            try Self.addNamed(contents.contexts, list: "contexts", file: file, into: &contexts)
        }

        private static func addNamed<Fields>(_ items: [Named<Fields>]?, list: String, file: String, into map: inout [String: Entry<Fields>]) throws {
            for (index, item) in (items ?? []).enumerated() {
                guard let name = item.name, !name.isEmpty else {
                    throw ConfigurationError(source: "kubeconfig \(file)", field: "\(list)[\(index)].name", problem: "required")
                }
                if map[name] != nil { continue }  // first file wins
                map[name] = Entry(fields: item.fields ?? Fields(), file: file)
            }
        }
    }
}
