import AsyncHTTPClient
import Foundation
import NIOCore

/// The events of a watch, parsed incrementally from the chunked response body (one JSON
/// object per line). Stopping iteration closes the request.
public struct WatchStream<Object: Decodable & Sendable>: AsyncSequence, Sendable {
    public typealias Element = WatchEvent<Object>

    /// Where the lines come from: an HTTP response body, or (for an in-memory API) chunks
    /// written the way the API server writes them.
    enum Source: Sendable {
        case http(HTTPClientResponse.Body)
        case chunks(AsyncThrowingStream<[UInt8], any Error>)
    }
    let source: Source

    init(body: HTTPClientResponse.Body) {
        source = .http(body)
    }

    /// A watch whose lines (`{"type":...,"object":...}` and a newline) arrive in `chunks`.
    public init(chunks: AsyncThrowingStream<[UInt8], any Error>) {
        source = .chunks(chunks)
    }

    public func makeAsyncIterator() -> Iterator {
        switch source {
        case .http(let body): Iterator(chunks: .http(body.makeAsyncIterator()))
        case .chunks(let stream): Iterator(chunks: .chunks(stream.makeAsyncIterator()))
        }
    }

    enum ChunkIterator {
        case http(HTTPClientResponse.Body.AsyncIterator)
        case chunks(AsyncThrowingStream<[UInt8], any Error>.AsyncIterator)

        mutating func next() async throws -> [UInt8]? {
            switch self {
            case .http(var iterator):
                defer { self = .http(iterator) }
                return try await iterator.next().map { Array($0.readableBytesView) }
            case .chunks(var iterator):
                defer { self = .chunks(iterator) }
                return try await iterator.next()
            }
        }
    }

    public struct Iterator: AsyncIteratorProtocol {
        var chunks: ChunkIterator
        var decoder = WatchEventDecoder<Object>()
        var finished = false

        public mutating func next() async throws -> WatchEvent<Object>? {
            while true {
                if let event = try decoder.next() { return event }
                if finished { return nil }
                if let chunk = try await chunks.next() {
                    try decoder.append(chunk)
                } else {
                    finished = true
                    if let event = try decoder.finish() { return event }
                    return nil
                }
            }
        }
    }
}
