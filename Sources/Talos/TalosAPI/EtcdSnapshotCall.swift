import GRPCCore
import NIOConcurrencyHelpers
import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix
import NIOSSL
import TalosMessages

/// The EtcdSnapshot call read straight off HTTP/2: the one call whose cost is per message.
///
/// Talos streams a snapshot as a million 1 KiB messages per GiB. Through grpc-swift each
/// message cost about 10 µs of client CPU (a protobuf decode into a copy, an async hand-off,
/// the stream state machine), so a backup ran at less than half of what a Go client reads
/// (docs/performance.md). Here the stream's DATA frames are deframed on the event loop as they
/// arrive (``SnapshotResponseDeframer``) and handed on as one chunk per socket read, so the
/// consumer's per-chunk work (hashing, the structure check, an upload's buffering) happens
/// once per read rather than once per message.
///
/// It is gRPC as grpc-go speaks it: the same TLS (``TalosClient/tlsConfiguration()``, ALPN
/// h2), the same HTTP/2 settings as the other calls (receive window
/// ``TalosClient/receiveWindow``), the request's `node` metadata, and the status from the
/// trailers, as ``RPCError`` with the codes grpc-swift gives (so ``TalosAPIError`` and
/// failover work as for the other calls; the messages are this file's). Bounds: connecting
/// within the client's timeout (else Unavailable, "cannot connect"), then the response's
/// headers within it again (else DeadlineExceeded); after that the consumer paces the stream
/// (HTTP/2 flow control) and its stall watchdog bounds it; cancelling the consumer resets the
/// stream and closes the connection (before the headers: CancellationError, no failover).
struct EtcdSnapshotCall: Sendable {
    let client: TalosClient

    /// Chunks buffered for the consumer before reading stops (each is one socket read).
    static let bufferedChunks = (low: 2, high: 8)

    func run<Result: Sendable>(
        endpoint: TalosEndpoint, node: String?,
        _ consume: (SnapshotChunks) async throws -> Result
    ) async throws -> Result {
        let tls = try NIOSSLContext(configuration: client.tlsConfiguration())
        let serverHostname = TalosClient.isIPAddress(endpoint.host) ? nil : endpoint.host
        let connectionErrors = ConnectionErrors()
        let multiplexer: NIOHTTP2Handler.AsyncStreamMultiplexer<Void>
        let connection: Channel
        do {
            (connection, multiplexer) = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(TimeAmount(client.timeout))
                .connect(host: endpoint.host, port: endpoint.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let sync = channel.pipeline.syncOperations
                        try sync.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverHostname))
                        try sync.addHandler(connectionErrors)
                        let multiplexer = try sync.configureAsyncHTTP2Pipeline(mode: .client, configuration: Self.http2Configuration()) { stream in
                            stream.eventLoop.makeSucceededVoidFuture()  // Talos pushes no streams
                        }
                        return (channel, multiplexer)
                    }
                }
        } catch {
            throw RPCError(code: .unavailable, message: "cannot connect to \(endpoint): \(error)")
        }
        do {
            let result = try await stream(on: multiplexer, of: connection, endpoint: endpoint, node: node, connectionErrors: connectionErrors, consume)
            try? await connection.close()
            return result
        } catch {
            try? await connection.close()
            throw error
        }
    }

    private func stream<Result: Sendable>(
        on multiplexer: NIOHTTP2Handler.AsyncStreamMultiplexer<Void>, of connection: Channel, endpoint: TalosEndpoint, node: String?,
        connectionErrors: ConnectionErrors, _ consume: (SnapshotChunks) async throws -> Result
    ) async throws -> Result {
        let timeout = client.timeout
        let opened: (Channel, EventLoopFuture<Void>, SnapshotChunks.Chunks)
        do {
            opened = try await multiplexer.openStream { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = SnapshotResponseHandler(head: channel.eventLoop.makePromise(), timeout: timeout, connectionErrors: connectionErrors)
                    let sequence = NIOThrowingAsyncSequenceProducer.makeSequence(
                        elementType: ByteBuffer.self,
                        backPressureStrategy: NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark(
                            lowWatermark: Self.bufferedChunks.low, highWatermark: Self.bufferedChunks.high),
                        finishOnDeinit: true,
                        delegate: SnapshotResponseHandler.Demand(handler: NIOLoopBound(handler, eventLoop: channel.eventLoop)))
                    handler.source = sequence.source
                    try channel.pipeline.syncOperations.addHandler(handler)
                    return (channel, handler.head.futureResult, sequence.sequence)
                }
            }
        } catch {
            // The connection closed under it (a TLS handshake that failed): say why.
            throw RPCError(code: .unavailable, message: "the connection closed before the snapshot stream began: \(connectionErrors.error ?? error)")
        }
        let (channel, head, chunks) = opened
        defer { channel.close(promise: nil) }  // a reset when the stream has not ended
        channel.write(HTTP2Frame.FramePayload.headers(.init(headers: Self.requestHeaders(endpoint: endpoint, node: node))), promise: nil)
        // EtcdSnapshotRequest has no fields: a gRPC message of length 0.
        let request = HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(ByteBuffer(bytes: [0, 0, 0, 0, 0])), endStream: true))
        channel.writeAndFlush(request, promise: nil)
        do {
            try await withTaskCancellationHandler {
                try await head.get()
            } onCancel: {
                // The connection too: a stream on a connection still in its TLS handshake (a
                // node that accepts and says nothing) is not on the wire yet, and closing it
                // alone may wait for that; the connection's end fails the head at once.
                channel.close(promise: nil)
                connection.close(promise: nil)
            }
        } catch where Task.isCancelled {
            throw CancellationError()  // not "unreachable": the caller gave up, no failover
        }
        try Task.checkCancellation()
        return try await consume(SnapshotChunks(chunks: chunks))
    }

    static func http2Configuration() -> NIOHTTP2Handler.Configuration {
        var configuration = NIOHTTP2Handler.Configuration()
        configuration.connection.initialSettings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: 100),
            HTTP2Setting(parameter: .enablePush, value: 0),
            HTTP2Setting(parameter: .initialWindowSize, value: TalosClient.receiveWindow),
            HTTP2Setting(parameter: .maxFrameSize, value: 1 << 14),
            HTTP2Setting(parameter: .maxHeaderListSize, value: HPACKDecoder.defaultMaxHeaderListSize),
        ]
        configuration.connection.targetWindowSize = TalosClient.receiveWindow
        configuration.stream.targetWindowSize = TalosClient.receiveWindow
        return configuration
    }

    static func requestHeaders(endpoint: TalosEndpoint, node: String?) -> HPACKHeaders {
        var headers: HPACKHeaders = [
            ":method": "POST", ":scheme": "https", ":path": "/machine.MachineService/EtcdSnapshot",
            ":authority": endpoint.description, "content-type": "application/grpc", "te": "trailers",
            "user-agent": "talos-etcd-backup",
        ]
        if let node { headers.add(name: "node", value: node) }
        return headers
    }
}

/// The first error the connection saw (a TLS handshake that failed, a reset connection): what
/// a stream that ends early reports, rather than only "closed".
final class ConnectionErrors: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    private let first = NIOLockedValueBox<(any Error)?>(nil)

    var error: (any Error)? { first.withLockedValue { $0 } }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        first.withLockedValue { if $0 == nil { $0 = error } }
        context.fireErrorCaught(error)
    }
}

/// The EtcdSnapshot response on its HTTP/2 stream channel: checks the headers (completing
/// `head`), deframes DATA into the chunk sequence, and ends it with the trailers' status. Reads
/// only while the consumer wants more; a consumer that goes away closes the stream.
final class SnapshotResponseHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload
    typealias Source = NIOThrowingAsyncSequenceProducer<
        ByteBuffer, any Error, NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark, Demand>.Source

    let head: EventLoopPromise<Void>
    var source: Source?
    private let timeout: Duration
    private let connectionErrors: ConnectionErrors
    private var deadline: Scheduled<Void>?
    private var context: ChannelHandlerContext?
    private var receivedHead = false
    private var headPending = true
    private var finished = false
    private var deframer = SnapshotResponseDeframer()
    private var output = ByteBuffer()
    private var producing = true
    private var readHeld = false

    init(head: EventLoopPromise<Void>, timeout: Duration, connectionErrors: ConnectionErrors) {
        self.head = head
        self.timeout = timeout
        self.connectionErrors = connectionErrors
    }

    /// The consumer's demand, on the event loop.
    struct Demand: NIOAsyncSequenceProducerDelegate {
        let handler: NIOLoopBound<SnapshotResponseHandler>

        func produceMore() {
            handler.eventLoop.execute { handler.value.resumeReading() }
        }

        func didTerminate() {
            handler.eventLoop.execute { handler.value.consumerGone() }
        }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let timeout = timeout
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        deadline = context.eventLoop.scheduleTask(in: TimeAmount(timeout)) {
            handler.value.fail(RPCError(code: .deadlineExceeded, message: "no response to EtcdSnapshot within \(timeout)"))
        }
        // A stream opened on a connection that has closed (a TLS handshake that failed just
        // before) is never activated nor closed by it: the connection's end ends the stream.
        context.channel.parent?.closeFuture.whenComplete { _ in
            handler.value.connectionClosed()
        }
    }

    private func connectionClosed() {
        let cause = connectionErrors.error.map { ": \($0)" } ?? ""
        fail(RPCError(code: .unavailable, message: "the connection closed before the snapshot stream ended\(cause)"))
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        fail(RPCError(code: .unavailable, message: "the snapshot stream was closed"))
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !finished else { return }
        do {
            switch unwrapInboundIn(data) {
            case .headers(let headers) where !receivedHead:
                try responseHead(headers.headers, endStream: headers.endStream)
            case .headers(let headers):
                try trailers(headers.headers)
            case .data(let data):
                guard receivedHead, case .byteBuffer(let buffer) = data.data else {
                    throw RPCError(code: .internalError, message: "the node sent data before its response headers")
                }
                do {
                    try deframer.process(buffer, into: &output)
                } catch {
                    throw Self.rpcError(error)
                }
                if data.endStream {
                    throw RPCError(code: .internalError, message: "the snapshot stream ended without a gRPC status")
                }
            case .rstStream(let code):
                throw RPCError(code: .unavailable, message: "the node reset the snapshot stream (HTTP/2 \(code))")
            default:
                break
            }
        } catch {
            fail(error)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        deliver()
    }

    func channelInactive(context: ChannelHandlerContext) {
        connectionClosed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(RPCError(code: .unavailable, message: "the snapshot stream broke: \(error)"))
    }

    func read(context: ChannelHandlerContext) {
        if producing { context.read() } else { readHeld = true }
    }

    private func responseHead(_ headers: HPACKHeaders, endStream: Bool) throws {
        receivedHead = true
        deadline?.cancel()
        guard let status = headers.first(name: ":status"), status == "200" else {
            let status = headers.first(name: ":status") ?? "none"
            throw RPCError(code: Self.code(httpStatus: status), message: "the endpoint answered HTTP status \(status), not gRPC")
        }
        if endStream { return try trailers(headers) }  // trailers only: an error, or an empty stream
        guard let contentType = headers.first(name: "content-type"), contentType.hasPrefix("application/grpc") else {
            throw RPCError(code: .internalError, message: "the endpoint answered with content type \(headers.first(name: "content-type") ?? "none"), not gRPC")
        }
        if let encoding = headers.first(name: "grpc-encoding"), encoding != "identity" {
            throw RPCError(code: .internalError, message: "the node compressed the stream with \(encoding), which was not offered")
        }
        completeHead(nil)
    }

    /// Completes `head` once: the waiter learns the stream has begun, or why not.
    private func completeHead(_ error: (any Error)?) {
        guard headPending else { return }
        headPending = false
        if let error { head.fail(error) } else { head.succeed() }
    }

    private func trailers(_ headers: HPACKHeaders) throws {
        guard let text = headers.first(name: "grpc-status") else {
            throw RPCError(code: .internalError, message: "the snapshot stream ended without a gRPC status")
        }
        if text == "0" { return finishSuccessfully() }
        let code = Int(text).flatMap(Status.Code.init(rawValue:)).flatMap(RPCError.Code.init) ?? .unknown
        throw RPCError(code: code, message: Self.percentDecoded(headers.first(name: "grpc-message") ?? "status \(text.prefix(20))"))
    }

    private func finishSuccessfully() {
        guard !deframer.isInsideMessage else {
            return fail(RPCError(code: .internalError, message: "the snapshot stream ended inside a message"))
        }
        deliver()
        finished = true
        completeHead(nil)  // a trailers-only success: an empty stream
        source?.finish()
        source = nil
    }

    /// Hands what this read produced to the consumer.
    private func deliver() {
        guard output.readableBytes > 0, let source else { return }
        let chunk = output
        output = ByteBuffer()
        if source.yield(chunk) == .stopProducing { producing = false }
    }

    private func resumeReading() {
        producing = true
        if readHeld, let context {
            readHeld = false
            context.read()
        }
    }

    private func consumerGone() {
        finished = true
        source = nil
        context?.close(promise: nil)
    }

    /// Ends the stream with `error` (once): the head's waiter or the consumer gets it, and the
    /// stream is closed.
    private func fail(_ error: any Error) {
        guard !finished else { return }
        finished = true
        deadline?.cancel()
        completeHead(error)
        source?.finish(error)
        source = nil
        context?.close(promise: nil)
    }

    /// A deframing failure as gRPC reports it.
    static func rpcError(_ error: SnapshotResponseError) -> RPCError {
        switch error {
        case .malformed(let message): RPCError(code: .internalError, message: message)
        case .tooLarge(let message): RPCError(code: .resourceExhausted, message: message)
        case .nodeFailed(let message): RPCError(code: .unavailable, message: message)
        }
    }

    /// gRPC's mapping of an HTTP status that is not 200 (grpc/doc/http-grpc-status-mapping.md).
    static func code(httpStatus: String) -> RPCError.Code {
        switch httpStatus {
        case "400": .internalError
        case "401": .unauthenticated
        case "403": .permissionDenied
        case "404": .unimplemented
        case "429", "502", "503", "504": .unavailable
        default: .unknown
        }
    }

    /// A `grpc-message` value, whose bytes outside printable ASCII (and `%`) gRPC sends as
    /// `%XX`; a broken escape stays as it is.
    static func percentDecoded(_ text: String) -> String {
        guard text.contains("%") else { return text }
        var bytes: [UInt8] = []
        var utf8 = Array(text.utf8)[...]
        func hexDigit(_ byte: UInt8) -> UInt8? {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        while let byte = utf8.popFirst() {
            if byte == UInt8(ascii: "%"), utf8.count >= 2,
               let high = hexDigit(utf8[utf8.startIndex]), let low = hexDigit(utf8[utf8.startIndex + 1]) {
                bytes.append(high << 4 | low)
                utf8 = utf8.dropFirst(2)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
