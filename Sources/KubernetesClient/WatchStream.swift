import AsyncHTTPClient
import Foundation
import NIOCore

/// One event of a watch.
public enum WatchEvent<Object: Decodable & Sendable>: Sendable {
    case added(Object)
    case modified(Object)
    case deleted(Object)
    /// The server's progress marker: everything up to this version has been sent.
    case bookmark(resourceVersion: String)
    /// The server ended the watch with an error, e.g. 410 Gone for a too-old resourceVersion.
    case error(Status)
    /// An ADDED, MODIFIED or DELETED event (`type`) whose object this program's types cannot
    /// read: the watch goes on, and the consumer decides what to do with it.
    case undecodable(type: String, UndecodableObject)
}

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
        var buffer: [UInt8] = []
        var finished = false
        let decoder = JSONDecoder()

        public mutating func next() async throws -> WatchEvent<Object>? {
            while true {
                if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = Data(buffer[..<newline])
                    buffer.removeSubrange(...newline)
                    if line.allSatisfy({ $0 == 0x20 || $0 == 0x0D }) { continue }
                    return try decodeEvent(line)
                }
                if finished {
                    guard !buffer.isEmpty else { return nil }
                    let line = Data(buffer)
                    buffer.removeAll()
                    return try decodeEvent(line)
                }
                if let chunk = try await chunks.next() {
                    buffer.append(contentsOf: chunk)
                } else {
                    finished = true
                }
            }
        }

        private struct Header: Decodable { var type: String }
        private struct Envelope<Payload: Decodable>: Decodable { var object: Payload }
        private struct MetadataOnly: Decodable {
            struct Meta: Decodable { var resourceVersion: String? }
            var metadata: Meta?
        }

        private func decodeEvent(_ line: Data) throws -> WatchEvent<Object> {
            let type = try decoder.decode(Header.self, from: line).type
            switch type {
            case "ADDED", "MODIFIED", "DELETED":
                let lossy = try decoder.decode(Envelope<Lossy<Object>>.self, from: line).object
                guard let object = lossy.value else {
                    return .undecodable(type: type, lossy.failure ?? UndecodableObject(error: "unreadable object"))
                }
                return type == "ADDED" ? .added(object) : type == "MODIFIED" ? .modified(object) : .deleted(object)
            case "BOOKMARK":
                let meta = try decoder.decode(Envelope<MetadataOnly>.self, from: line).object
                return .bookmark(resourceVersion: meta.metadata?.resourceVersion ?? "")
            case "ERROR": return .error(try decoder.decode(Envelope<Status>.self, from: line).object)
            default:
                throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "unknown watch event type \(type)"))
            }
        }
    }
}
