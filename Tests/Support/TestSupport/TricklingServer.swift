import NIOCore
import NIOPosix
import Synchronization

/// A server on 127.0.0.1 that accepts every connection and answers it one byte every
/// `interval`, forever: the start of an HTTP response head that never ends. A hostile or
/// broken endpoint that keeps a client's connection alive without ever answering it, which no
/// idle timeout catches.
public final class TricklingServer: Sendable {
    private let channel: any Channel
    private let group: MultiThreadedEventLoopGroup
    private let accepted = Counter()
    public let port: Int

    private final class Counter: Sendable {
        let value = Atomic<Int>(0)
    }

    public init(interval: TimeAmount = .milliseconds(500)) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.group = group
        let accepted = self.accepted
        channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                accepted.value.add(1, ordering: .relaxed)
                return channel.pipeline.addHandler(Trickle(interval: interval))
            }
            .bind(host: "127.0.0.1", port: 0).get()
        port = channel.localAddress?.port ?? 0
    }

    public var endpoint: String { "http://127.0.0.1:\(port)" }

    /// Connections accepted so far.
    public var connections: Int { accepted.value.load(ordering: .relaxed) }

    public func shutdown() async throws {
        try await channel.close()
        try await group.shutdownGracefully()
    }

    /// Writes the next byte of an endless response head every `interval`; reads nothing.
    private final class Trickle: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        let interval: TimeAmount
        var task: RepeatedTask?

        init(interval: TimeAmount) { self.interval = interval }

        func channelActive(context: ChannelHandlerContext) {
            let channel = context.channel
            let head = Array("HTTP/1.1 200 OK\r\nx-amz-request-id: ".utf8)
            var sent = 0
            task = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
                let byte = sent < head.count ? head[sent] : UInt8(ascii: "a")
                sent += 1
                channel.writeAndFlush(ByteBuffer(bytes: [byte]), promise: nil)
            }
            context.fireChannelActive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

        func channelInactive(context: ChannelHandlerContext) {
            task?.cancel()
            task = nil
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}
