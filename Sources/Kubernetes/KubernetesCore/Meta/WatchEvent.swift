import Foundation

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

/// Reads watch events from the bytes of a watch response as they arrive: one JSON object per
/// line (`{"type":...,"object":...}`). No I/O, so the watch client, the in-memory API and the
/// fuzz target (`FuzzKubernetesObjects`) read events the same way. A line may be split across
/// any number of chunks; one that grows past ``maximumLineBytes`` without ending is an error
/// (the API server's objects are bounded well below it), never an unbounded buffer.
public struct WatchEventDecoder<Object: Decodable & Sendable> {
    /// The longest event line read: etcd refuses values over 1.5 MiB by default, and an event
    /// line is one object plus a few bytes of envelope.
    public static var maximumLineBytes: Int { 16 * 1024 * 1024 }

    private var buffer: [UInt8] = []
    /// Where the unread bytes of `buffer` start (consumed lines are dropped in bulk).
    private var start = 0
    /// How far past `start` the buffer is known to hold no newline: a long line arriving in
    /// many chunks is searched once, not once per chunk.
    private var scanned = 0
    private let decoder = JSONDecoder()

    public init() {}

    /// Adds the next bytes of the response.
    public mutating func append(_ bytes: some Collection<UInt8>) throws {
        if start > 0, start >= buffer.count / 2 {
            buffer.removeSubrange(..<start)
            scanned -= start
            start = 0
        }
        buffer.append(contentsOf: bytes)
        // A line that has not ended yet may not grow past the bound (one that has is checked
        // when it is read).
        if buffer.count - start > Self.maximumLineBytes, !buffer[scanned...].contains(UInt8(ascii: "\n")) {
            throw Self.tooLong
        }
    }

    private static var tooLong: DecodingError {
        DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "a watch event line is longer than \(maximumLineBytes) bytes"))
    }

    /// The event of the next complete line, or nil until more bytes arrive. Blank lines are
    /// skipped.
    public mutating func next() throws -> WatchEvent<Object>? {
        while let newline = buffer[max(start, scanned)...].firstIndex(of: UInt8(ascii: "\n")) {
            let line = buffer[start..<newline]
            start = newline + 1
            scanned = start
            guard line.count <= Self.maximumLineBytes else { throw Self.tooLong }
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x0D }) { continue }
            return try decodeEvent(Data(line))
        }
        scanned = buffer.count
        return nil
    }

    /// At the end of the response: the event of a last line that has no newline, if any.
    public mutating func finish() throws -> WatchEvent<Object>? {
        if let event = try next() { return event }
        let rest = buffer[start...]
        buffer.removeAll()
        start = 0
        scanned = 0
        guard rest.count <= Self.maximumLineBytes else { throw Self.tooLong }
        if rest.allSatisfy({ $0 == 0x20 || $0 == 0x0D }) { return nil }
        return try decodeEvent(Data(rest))
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
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "unknown watch event type \(type.prefix(64))"))
        }
    }
}
