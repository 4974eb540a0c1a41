import NIOCore
import NIOPosix
import Synchronization

/// A TCP proxy on 127.0.0.1 in front of a server, which can cut connections: the next
/// `cutNext` connections to carry more than `cutAfterBytes` upstream (or every such connection,
/// when `cutAlways`) are closed at that point, as a dropped connection mid-part would be. It
/// can also freeze the connections open at a moment: they stay open but carry nothing more in
/// either direction (a proxy or NAT that lost its state), while new connections work.
public final class FaultProxy: Sendable {
    private struct Faults {
        var cutNext = 0
        var cutAlways = false
        var cutAfterBytes = 1_048_576
        var cuts = 0
        var connections = 0
        var frozenBelow = 0
        var stallDownstreamAfter: Int?
        var cutDownstreamAfter: Int?
    }

    private final class State: Sendable {
        let faults = Mutex(Faults())
    }

    private let state = State()
    private let channel: any Channel
    private let group: MultiThreadedEventLoopGroup
    public let port: Int

    public init(targetHost: String, targetPort: Int) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.group = group
        let state = self.state
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { inbound in
                let connection = state.faults.withLock { faults in
                    defer { faults.connections += 1 }
                    return faults.connections
                }
                let frozen: @Sendable () -> Bool = { state.faults.withLock { connection < $0.frozenBelow } }
                let downstreamStalled: @Sendable (Int) -> Bool = { forwarded in
                    frozen() || state.faults.withLock { faults in faults.stallDownstreamAfter.map { forwarded >= $0 } ?? false }
                }
                return ClientBootstrap(group: inbound.eventLoop)
                    .connect(host: targetHost, port: targetPort)
                    .flatMap { outbound in
                        let upstream = Relay(peer: outbound, frozen: { _ in frozen() }) { forwarded in
                            state.faults.withLock { faults -> Bool in
                                guard forwarded > faults.cutAfterBytes else { return false }
                                if faults.cutAlways || faults.cutNext > 0 {
                                    if !faults.cutAlways { faults.cutNext -= 1 }
                                    faults.cuts += 1
                                    return true
                                }
                                return false
                            }
                        }
                        let downstream = Relay(peer: inbound, frozen: downstreamStalled) { forwarded in
                            state.faults.withLock { faults in
                                guard let limit = faults.cutDownstreamAfter, forwarded > limit else { return false }
                                faults.cuts += 1
                                return true
                            }
                        }
                        return inbound.pipeline.addHandler(upstream).flatMap { outbound.pipeline.addHandler(downstream) }
                    }
            }
        channel = try await bootstrap.bind(host: "127.0.0.1", port: 0).get()
        port = channel.localAddress?.port ?? 0
    }

    /// From now on, every connection open now carries nothing in either direction and is
    /// never closed by the proxy; connections made later work.
    public func freezeOpenConnections() {
        state.faults.withLock { $0.frozenBelow = $0.connections }
    }

    /// From now on, every connection passes at most `bytes` from the server to the client,
    /// then nothing more, and is never closed by the proxy: a server that stops sending
    /// mid-response.
    public func stallDownstream(afterBytes bytes: Int) {
        state.faults.withLock { $0.stallDownstreamAfter = bytes }
    }

    /// From now on, every connection is closed once it has carried more than `bytes` from the
    /// server to the client: a server or network that drops a response mid-body.
    public func cutDownstream(afterBytes bytes: Int) {
        state.faults.withLock { $0.cutDownstreamAfter = bytes }
    }

    /// Connections accepted so far.
    public var connections: Int { state.faults.withLock { $0.connections } }

    /// Cut the next `count` connections after `bytes` bytes upstream.
    public func cutNext(_ count: Int, afterBytes bytes: Int) {
        state.faults.withLock { $0.cutNext = count; $0.cutAfterBytes = bytes }
    }

    /// Cut every connection after `bytes` bytes upstream (a permanent failure).
    public func cutAlways(afterBytes bytes: Int) {
        state.faults.withLock { $0.cutAlways = true; $0.cutAfterBytes = bytes }
    }

    public var cuts: Int { state.faults.withLock { $0.cuts } }

    public func shutdown() async throws {
        try await channel.close()
        try await group.shutdownGracefully()
    }

    /// Copies what one side reads to the other side; closes both when `shouldCut` says so.
    private final class Relay: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        let peer: any Channel
        /// Whether the connection carries nothing more, given the bytes forwarded so far.
        let frozen: @Sendable (Int) -> Bool
        let shouldCut: @Sendable (Int) -> Bool
        var forwarded = 0
        var cut = false

        init(peer: any Channel, frozen: @escaping @Sendable (Int) -> Bool, shouldCut: @escaping @Sendable (Int) -> Bool) {
            self.peer = peer
            self.frozen = frozen
            self.shouldCut = shouldCut
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            guard !cut, !frozen(forwarded) else { return }
            forwarded += buffer.readableBytes
            if shouldCut(forwarded) {
                cut = true
                peer.close(promise: nil)
                context.close(promise: nil)
                return
            }
            peer.writeAndFlush(buffer, promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            if !frozen(forwarded) { peer.close(promise: nil) }  // a frozen connection never tells the other side
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}
