import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import NIOCore
import Synchronization

/// What a node said about itself before a recovery touches it.
public struct TalosNodeVersion: Sendable {
    /// The endpoint that reached the node.
    public var endpoint: TalosEndpoint
    public var hostname: String
    /// Talos' release tag, e.g. v1.9.0.
    public var tag: String
}

/// Recovery through the Talos API, as `talosctl bootstrap --recover-from` does it: upload the
/// snapshot (`EtcdRecover`, client streaming), then `Bootstrap` with `recover_etcd`. Both are
/// `os:admin` only in every Talos release; Talos' refusals come back as ``TalosAPIError`` with
/// its own message.
extension TalosClient {
    /// The first endpoint (talosconfig order) through which `node` answers `Version`: a check
    /// that the node is there before anything is sent to it.
    public func reachNode(_ node: String?) async throws -> TalosNodeVersion {
        try await TalosAPIError.translating {
            var failures: [(target: String, error: String)] = []
            for endpoint in context.endpoints {
                do {
                    let version = try await firstMessage(of: "Version", endpoint: endpoint, node: node, error: \.metadata.error) { machine, metadata, options in
                        try await machine.version(.init(), metadata: metadata, options: options).messages
                    }
                    return TalosNodeVersion(endpoint: endpoint, hostname: version.metadata.hostname, tag: version.version.tag)
                } catch let error as RPCError where Self.isUnreachable(error) {
                    failures.append(("endpoint \(endpoint)", error.message))
                }
            }
            throw TalosUnreachable(failures: failures, task: "reach node \(node ?? "(the endpoint itself)")")
        }
    }

    /// Uploads a snapshot to `node` with EtcdRecover: `produce` hands its bytes to `send` (in
    /// messages of at most 1 MiB). The call completes only when `produce` returns; when it
    /// throws, the call is cancelled (Talos then removes what it received) and its error is
    /// thrown. No overall deadline (it depends on the size): bound it by progress
    /// (``withIdleTimeout``).
    public func uploadRecoverySnapshot<Result: Sendable>(
        endpoint: TalosEndpoint, node: String?,
        _ produce: @escaping @Sendable (_ send: @escaping @Sendable (ByteBuffer) async throws -> Void) async throws -> Result
    ) async throws -> Result {
        let outcome = Mutex<Swift.Result<Result, any Error>?>(nil)
        do {
            try await TalosAPIError.translating {
                let response = try await withMachineService(endpoint: endpoint) { machine in
                    try await machine.etcdRecover(metadata: Self.metadata(node: node)) { writer in
                        do {
                            let result = try await produce { chunk in
                                var rest = chunk
                                while rest.readableBytes > 0 {
                                    let piece = rest.readSlice(length: min(rest.readableBytes, 1 << 20))!
                                    var message = Common_Data()
                                    message.bytes = Data(piece.readableBytesView)
                                    do {
                                        try await writer.write(message)
                                    } catch {
                                        throw CallEnded(underlying: error)
                                    }
                                }
                            }
                            outcome.withLock { $0 = .success(result) }
                        } catch {
                            outcome.withLock { $0 = .failure(error) }
                            throw error
                        }
                    }
                }
                if let error = response.messages.first(where: { !$0.metadata.error.isEmpty })?.metadata.error {
                    throw RPCError(code: .unknown, message: "node \(node ?? endpoint.description): \(error)")
                }
            }
        } catch {
            // The producer's own error (a failed check) says more than the cancelled call's; a
            // write that failed, or a read cancelled, because the call ended (Talos refused it)
            // says less than the call's error.
            if case .failure(let produced) = outcome.withLock({ $0 }), !(produced is CallEnded),
               !(produced is CancellationError) || Task.isCancelled {
                throw produced
            }
            throw error
        }
        switch outcome.withLock({ $0 }) {
        case .success(let result): return result
        case .failure(let error): throw error
        case .none: throw TalosAPIError(code: .other, grpcCode: "internalError", message: "EtcdRecover ended before the snapshot was sent")
        }
    }

    /// A write that failed because the call had ended (refused, broken): the call's own error
    /// is the one to report.
    private struct CallEnded: Error {
        var underlying: any Error
    }

    /// Bootstrap: with `recoverEtcd`, etcd is recovered from the snapshot uploaded with
    /// ``uploadRecoverySnapshot(endpoint:node:_:sent:)``; Talos checks the snapshot's SHA-256
    /// trailer unless `skipHashCheck`. A node whose etcd already runs refuses (AlreadyExists:
    /// "etcd data directory is not empty").
    public func bootstrap(endpoint: TalosEndpoint, node: String?, recoverEtcd: Bool, skipHashCheck: Bool = false,
                          timeout: Duration = .seconds(300)) async throws {
        try await TalosAPIError.translating {
            var options = CallOptions.defaults
            options.timeout = timeout
            let callOptions = options
            var request = Machine_BootstrapRequest()
            request.recoverEtcd = recoverEtcd
            request.recoverSkipHashCheck = skipHashCheck
            let response = try await withMachineService(endpoint: endpoint) { machine in
                try await machine.bootstrap(request, metadata: Self.metadata(node: node), options: callOptions)
            }
            if let error = response.messages.first(where: { !$0.metadata.error.isEmpty })?.metadata.error {
                throw RPCError(code: .unknown, message: "node \(node ?? endpoint.description): \(error)")
            }
        }
    }
}
