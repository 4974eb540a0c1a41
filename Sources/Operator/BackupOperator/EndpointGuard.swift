import CustomResources
import Dispatch
import EndpointPolicy
import Foundation
import S3
import Synchronization
import TalosAPI

#if canImport(Glibc)
import Glibc
import BackupResolution
import SnapshotPipeline
#endif

/// Applies the operator's ``EndpointPolicy``s to every host a backup makes the operator reach:
/// the host its S3 requests go to (the endpoint's, `<bucket>.<endpoint>` when addressing is
/// virtual-hosted, or AWS's regional one) and every endpoint of its talosconfig. It runs before
/// each attempt and before the store is asked anything on a deletion. A host that may not be
/// used fails the backup at once with `EndpointNotAllowed`, before any connection, naming the
/// field, the host and the rule.
///
/// Fails closed: a name that does not resolve within ``resolutionBound``, or to nothing, or to
/// more than ``maximumAddresses`` addresses, is not used (a retryable failure: DNS may come
/// back). A DNS answer that changes between this check and the connection is not caught.
public struct EndpointGuard: Sendable {
    public var s3: EndpointPolicy
    public var talos: EndpointPolicy
    /// How long one name may take to resolve.
    public static let resolutionBound = Duration.seconds(10)
    public static let maximumAddresses = 256
    /// The addresses of a host name, nil when it did not resolve in time; tests use literal
    /// addresses and `localhost`.
    let resolve: @Sendable (String) async -> [IPAddress]?

    public init(s3: EndpointPolicy = EndpointPolicy(), talos: EndpointPolicy = EndpointPolicy()) {
        self.s3 = s3
        self.talos = talos
        self.resolve = { host in await Self.addresses(of: host, within: Self.resolutionBound) }
    }

    /// Throws for the first host of an attempt that may not be used.
    func check(s3 destination: BackupDestination, talos context: TalosContext, talosSource: String) async throws {
        try await checkStore(destination)
        for endpoint in context.endpoints {
            if let problem = talos.problemByName(host: endpoint.host) {
                throw BackupFailure(reason: BackupFailure.Reason.endpointNotAllowed,
                                    message: "endpoint of \(talosSource): \(problem); the operator's --denied-endpoint-networks and --allowed-talos-endpoints decide which hosts backups may use",
                                    retryable: false)
            }
            let addresses = try await addresses(endpoint.host, unresolved: { problem in
                BackupFailure(reason: BackupFailure.Reason.talosUnreachable, message: "endpoint \(endpoint) of \(talosSource): \(problem)")
            })
            if let problem = talos.problem(host: endpoint.host, addresses: addresses) {
                throw BackupFailure(reason: BackupFailure.Reason.endpointNotAllowed,
                                    message: "endpoint of \(talosSource): \(problem); the operator's --denied-endpoint-networks and --allowed-talos-endpoints decide which hosts backups may use",
                                    retryable: false)
            }
        }
    }

    /// Throws unless the host S3 requests for `destination` go to may be used.
    func checkStore(_ destination: BackupDestination) async throws {
        let host = S3Client.requestHost(destination.s3, bucket: destination.bucket)
        if let problem = s3.problemByName(host: host) { throw storeRefused(problem) }
        let addresses = try await addresses(host, unresolved: { problem in
            BackupFailure(reason: BackupFailure.Reason.uploadFailed, message: "the S3 endpoint's host \(host): \(problem)")
        })
        if let problem = s3.problem(host: host, addresses: addresses) { throw storeRefused(problem) }
    }

    private func storeRefused(_ problem: String) -> BackupFailure {
        BackupFailure(reason: BackupFailure.Reason.endpointNotAllowed,
                      message: "spec.backupStorage.s3.endpoint: \(problem); the operator's --denied-endpoint-networks and --allowed-s3-endpoints decide which hosts backups may use",
                      retryable: false)
    }

    private func addresses(_ host: String, unresolved: (String) -> BackupFailure) async throws -> [IPAddress] {
        if let literal = IPAddress(parsing: host) { return [literal] }
        guard let addresses = await resolve(host) else {
            throw unresolved("it did not resolve within \(Self.resolutionBound.components.seconds) s (every address of a host is checked before it is used)")
        }
        guard !addresses.isEmpty else { throw unresolved("it resolves to no address") }
        guard addresses.count <= Self.maximumAddresses else {
            throw unresolved("it resolves to more than \(Self.maximumAddresses) addresses, more than are checked")
        }
        return addresses
    }

    /// Every address getaddrinfo gives for `host`, or nil when it has not answered within
    /// `limit`. getaddrinfo blocks and cannot be cancelled, so it runs on a Dispatch queue of
    /// its own and is left to finish there when the bound passes: the caller never waits longer.
    static func addresses(of host: String, within limit: Duration,
                          lookUp: @escaping @Sendable (String) -> [IPAddress] = EndpointGuard.lookUp) async -> [IPAddress]? {
        await withCheckedContinuation { (continuation: CheckedContinuation<[IPAddress]?, Never>) in
            let answer = ResumeOnce(continuation)
            resolverQueue.async { answer.resume(lookUp(host)) }
            let milliseconds = Int(limit.components.seconds * 1000 + limit.components.attoseconds / 1_000_000_000_000_000)
            DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(milliseconds)) { answer.resume(nil) }
        }
    }

    private static let resolverQueue = DispatchQueue(label: "endpoint-guard.resolver", attributes: .concurrent)

    /// getaddrinfo's answer, up to one address more than are checked (so that too many shows).
    static func lookUp(_ host: String) -> [IPAddress] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &list) == 0, let first = list else { return [] }
        defer { freeaddrinfo(first) }
        var found: [IPAddress] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let entry = cursor, found.count <= maximumAddresses {
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

/// A continuation resumed by whichever of two callers comes first.
private final class ResumeOnce: Sendable {
    private let continuation: Mutex<CheckedContinuation<[IPAddress]?, Never>?>

    init(_ continuation: CheckedContinuation<[IPAddress]?, Never>) {
        self.continuation = Mutex(continuation)
    }

    func resume(_ value: [IPAddress]?) {
        continuation.withLock { pending in
            pending?.resume(returning: value)
            pending = nil
        }
    }
}
