import Foundation
import KubernetesClient
import Testing

/// The lines of a watch response, read as they arrive (the fuzz target FuzzKubernetesObjects
/// checks that any chunking reads the same).
@Suite("watch event lines")
struct WatchEventDecoderTests {
    struct Named: Decodable, Sendable { var metadata: ObjectMeta }

    func names(_ events: [WatchEvent<Named>]) -> [String] {
        events.map { event in
            switch event {
            case .added(let object): "ADDED \(object.metadata.name ?? "")"
            case .modified(let object): "MODIFIED \(object.metadata.name ?? "")"
            case .deleted(let object): "DELETED \(object.metadata.name ?? "")"
            case .bookmark(let version): "BOOKMARK \(version)"
            case .error(let status): "ERROR \(status.code ?? 0)"
            case .undecodable(let type, _): "UNDECODABLE \(type)"
            }
        }
    }

    @Test("events split anywhere, blank lines, CRLF and a last line without a newline")
    func chunks() throws {
        let text = """
            {"type":"ADDED","object":{"metadata":{"name":"a"}}}
            \r
            {"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"7"}}}\r
            {"type":"MODIFIED","object":{"metadata":"not an object"}}
            {"type":"ERROR","object":{"code":410,"reason":"Expired"}}
            {"type":"DELETED","object":{"metadata":{"name":"a"}}}
            """
        let bytes = Array(text.utf8)
        for size in [1, 2, 7, 64, bytes.count] {
            var decoder = WatchEventDecoder<Named>()
            var events: [WatchEvent<Named>] = []
            var offset = 0
            while offset < bytes.count {
                try decoder.append(bytes[offset..<min(offset + size, bytes.count)])
                offset += size
                while let event = try decoder.next() { events.append(event) }
            }
            if let event = try decoder.finish() { events.append(event) }
            #expect(names(events) == ["ADDED a", "BOOKMARK 7", "UNDECODABLE MODIFIED", "ERROR 410", "DELETED a"], "chunks of \(size)")
        }
    }

    @Test("an unknown event type is an error, and so is a line that is not JSON")
    func malformed() throws {
        var decoder = WatchEventDecoder<Named>()
        try decoder.append(Array("{\"type\":\"SOMETHING\"}\nnot json\n".utf8))
        #expect(throws: DecodingError.self) { try decoder.next() }
        #expect(throws: DecodingError.self) { try decoder.next() }
    }

    /// A server (or a proxy) that never ends a line must not grow the buffer without bound.
    @Test("a line longer than the bound is an error, not an unbounded buffer")
    func unendingLine() throws {
        var decoder = WatchEventDecoder<Named>()
        let piece = [UInt8](repeating: UInt8(ascii: "x"), count: 1 << 20)
        var thrown = false
        for _ in 0...(WatchEventDecoder<Named>.maximumLineBytes >> 20) {
            do {
                try decoder.append(piece)
            } catch {
                thrown = true
                #expect("\(error)".contains("longer than"))
                break
            }
        }
        #expect(thrown)
    }

    /// Found in review: a line over the bound that arrived together with its newline was read.
    @Test("a line longer than the bound is an error also when its newline comes with it")
    func longLineWithNewline() throws {
        var decoder = WatchEventDecoder<Named>()
        try decoder.append([UInt8](repeating: UInt8(ascii: "x"), count: WatchEventDecoder<Named>.maximumLineBytes + 1) + [UInt8(ascii: "\n")])
        #expect(throws: DecodingError.self) { try decoder.next() }
    }
}
