import Deadline
import Foundation
import EndpointPolicy
import NIOPosix
import S3
import TalosAPI
import TalosBackupAPI

#if canImport(Glibc)
import Glibc
#endif

/// Applies the operator's ``EndpointPolicy``s to what one attempt is about to reach: the S3
/// endpoint of the backup's spec (or AWS's regional host) and every endpoint of its
/// talosconfig. A host that may not be used fails the backup at once with
/// `EndpointNotAllowed`, before any connection, naming the field, the host and the rule.
public struct EndpointGuard: Sendable {
    public var s3: EndpointPolicy
    public var talos: EndpointPolicy
    /// Addresses of a host name (getaddrinfo on NIO's thread pool, bounded by 10 s); tests
    /// use literal addresses and `localhost`.
    let resolve: @Sendable (String) async -> [IPAddress]

    public init(s3: EndpointPolicy = EndpointPolicy(), talos: EndpointPolicy = EndpointPolicy()) {
        self.s3 = s3
        self.talos = talos
        self.resolve = { host in (try? await withDeadline(.seconds(10), "resolving \(host)") { try await Self.addresses(of: host) }) ?? [] }
    }

    /// Throws `EndpointNotAllowed` for the first host that may not be used.
    func check(s3 configuration: S3Configuration, talos context: TalosContext, talosSource: String) async throws {
        let s3Host = configuration.endpoint.flatMap { URLHost.of($0) } ?? "s3.\(configuration.region).amazonaws.com"
        if let problem = s3.problem(host: s3Host, addresses: await addresses(s3Host)) {
            throw BackupFailure(reason: BackupFailure.Reason.endpointNotAllowed,
                                message: "spec.backupStorage.s3.endpoint: \(problem); the operator's --denied-endpoint-networks and --allowed-s3-endpoints decide which hosts backups may use",
                                retryable: false)
        }
        for endpoint in context.endpoints {
            if let problem = talos.problem(host: endpoint.host, addresses: await addresses(endpoint.host)) {
                throw BackupFailure(reason: BackupFailure.Reason.endpointNotAllowed,
                                    message: "endpoint of \(talosSource): \(problem); the operator's --denied-endpoint-networks and --allowed-talos-endpoints decide which hosts backups may use",
                                    retryable: false)
            }
        }
    }

    private func addresses(_ host: String) async -> [IPAddress] {
        if let literal = IPAddress(parsing: host) { return [literal] }
        return await resolve(host)
    }

    /// Every address getaddrinfo gives for `host`; empty when it gives none (the connection
    /// then fails on its own).
    static func addresses(of host: String) async throws -> [IPAddress] {
        try await NIOThreadPool.singleton.runIfActive {
            var hints = addrinfo()
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            var list: UnsafeMutablePointer<addrinfo>?
            guard getaddrinfo(host, nil, &hints, &list) == 0, let first = list else { return [] }
            defer { freeaddrinfo(first) }
            var found: [IPAddress] = []
            var cursor: UnsafeMutablePointer<addrinfo>? = first
            while let entry = cursor, found.count < 64 {
                if let address = entry.pointee.ai_addr {
                    switch Int32(address.pointee.sa_family) {
                    case AF_INET:
                        let bytes = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { withUnsafeBytes(of: $0.pointee.sin_addr) { Array($0) } }
                        if let parsed = IPAddress(bytes: bytes) { found.append(parsed) }
                    case AF_INET6:
                        let bytes = address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { withUnsafeBytes(of: $0.pointee.sin6_addr) { Array($0) } }
                        if let parsed = IPAddress(bytes: bytes) { found.append(parsed) }
                    default:
                        break
                    }
                }
                cursor = entry.pointee.ai_next
            }
            return found
        }
    }
}

/// The host of an endpoint URL, without brackets.
enum URLHost {
    static func of(_ endpoint: String) -> String? {
        guard let host = URLComponents(string: endpoint)?.host, !host.isEmpty else { return nil }
        return host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
    }
}
