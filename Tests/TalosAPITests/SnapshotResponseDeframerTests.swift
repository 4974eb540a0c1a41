import Foundation
import NIOCore
import SwiftProtobuf
import TalosMessages
import Testing
@testable import TalosAPI

/// gRPC framing of `messages`: each behind its 5-byte prefix (uncompressed, big-endian length).
func grpcFramed(_ messages: [[UInt8]]) -> [UInt8] {
    messages.flatMap { message in
        [0] + withUnsafeBytes(of: UInt32(message.count).bigEndian, Array.init) + message
    }
}

/// `common.Data` with these bytes (and metadata), encoded by swift-protobuf: what Talos sends.
func encodedData(_ bytes: [UInt8], hostname: String = "", error: String = "") throws -> [UInt8] {
    var message = Common_Data()
    message.bytes = Data(bytes)
    if !hostname.isEmpty || !error.isEmpty {
        message.metadata.hostname = hostname
        message.metadata.error = error
    }
    return try message.serializedBytes()
}

/// What the deframer makes of `input` fed in pieces of `size` bytes: the output, and the
/// error if one ended it.
func deframe(_ input: [UInt8], pieces size: Int) -> (output: [UInt8], error: SnapshotResponseError?, inside: Bool) {
    var deframer = SnapshotResponseDeframer()
    var output = ByteBuffer()
    var offset = 0
    while offset < input.count {
        let end = min(input.count, offset + size)
        do {
            try deframer.process(ByteBuffer(bytes: input[offset..<end]), into: &output)
        } catch {
            return (Array(output.readableBytesView), error, deframer.isInsideMessage)
        }
        offset = end
    }
    return (Array(output.readableBytesView), nil, deframer.isInsideMessage)
}

@Suite("EtcdSnapshot response deframer (gRPC framing and common.Data without a protobuf library)")
struct SnapshotResponseDeframerTests {
    @Test("Talos' 1 KiB messages come out as the snapshot's bytes, however the frames split them")
    func splits() throws {
        var generator = SystemRandomNumberGenerator()
        let chunks = (0..<9).map { index in (0..<(index == 8 ? 17 : 1024)).map { _ in UInt8.random(in: 0...255, using: &generator) } }
        let input = grpcFramed(try chunks.map { try encodedData($0) } + [try encodedData([])])
        for size in [1, 2, 5, 6, 1029, 1030, 4096, 16384, input.count] {
            let result = deframe(input, pieces: size)
            #expect(result.error == nil)
            #expect(result.output == chunks.flatMap { $0 }, "pieces of \(size)")
            #expect(!result.inside)
        }
        #expect(deframe(Array(input.dropLast()), pieces: 1000).inside, "a message cut short is still open: the stream may not end there")
        #expect(deframe(Array(input.prefix(3)), pieces: 1).inside, "so is a prefix cut short")
    }

    @Test("metadata with only a hostname (Talos' proxy adds it) is data; metadata with an error ends the stream with it")
    func metadata() throws {
        let hostnameOnly = grpcFramed([try encodedData([1, 2, 3], hostname: "cp-1")])
        #expect(deframe(hostnameOnly, pieces: 7).output == [1, 2, 3])
        let failed = grpcFramed([try encodedData([1, 2]), try encodedData([], hostname: "cp-2", error: "etcd is not running")])
        let result = deframe(failed, pieces: 3)
        #expect(result.output == [1, 2], "what came before the error was delivered")
        #expect(result.error == .nodeFailed("snapshot stream failed on node cp-2: etcd is not running"))
    }

    @Test("the last bytes field of a message counts and unknown fields are skipped, as swift-protobuf decodes them")
    func protobufRules() throws {
        // field 2 "ab", unknown varint 7, unknown fixed64, unknown fixed32, unknown bytes 9, field 2 "xyz"
        let message: [UInt8] = [0x12, 2, 0x61, 0x62, 0x38, 0x96, 0x01, 0x41] + [UInt8](repeating: 1, count: 8)
            + [0x4d, 1, 2, 3, 4, 0x4a, 1, 0] + [0x12, 3, 0x78, 0x79, 0x7a]
        let decoded = try Common_Data(serializedBytes: message)
        #expect(deframe(grpcFramed([message]), pieces: 4).output == Array(decoded.bytes))
        #expect(decoded.bytes == Data("xyz".utf8))
    }

    @Test("a message of the full 4 MiB, dribbled in 1 KiB frames, comes out whole (the partial message is appended to, not copied per frame)")
    func largeMessageInSmallFrames() throws {
        let bytes = (0..<(4 << 20) - 16).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let input = grpcFramed([try encodedData(bytes)])
        let result = deframe(input, pieces: 1024)
        #expect(result.error == nil)
        #expect(result.output == bytes)
    }

    @Test("gRPC's mapping of HTTP statuses, and grpc-message's percent-encoding (broken escapes stay as they are)")
    func statusAndMessage() {
        #expect(SnapshotResponseHandler.code(httpStatus: "403") == .permissionDenied)
        #expect(SnapshotResponseHandler.code(httpStatus: "503") == .unavailable)
        #expect(SnapshotResponseHandler.code(httpStatus: "404") == .unimplemented)
        #expect(SnapshotResponseHandler.code(httpStatus: "418") == .unknown)
        #expect(SnapshotResponseHandler.percentDecoded("not authorized") == "not authorized")
        #expect(SnapshotResponseHandler.percentDecoded("caf%C3%A9 100%25") == "café 100%")
        #expect(SnapshotResponseHandler.percentDecoded("%+f %zz %4") == "%+f %zz %4")
    }

    @Test("hostile framing is refused with what is wrong: compression, a message beyond 4 MiB (before it is buffered), broken protobuf")
    func hostile() {
        func error(_ input: [UInt8], pieces: Int = 64) -> String? { deframe(input, pieces: pieces).error?.description }
        #expect(error([1, 0, 0, 0, 2, 0x12, 0])?.contains("compressed") == true)
        let huge = [0] + withUnsafeBytes(of: UInt32(4 << 20 + 1).bigEndian, Array.init)
        #expect(deframe(huge, pieces: 5).error == .tooLarge("the node sent a gRPC message of 4194305 bytes, more than the 4194304 allowed"))
        #expect(deframe(grpcFramed([[0x12, 0x80]]), pieces: 9).error?.description.contains("truncated varint") == true)
        #expect(error(grpcFramed([[0x12, 5, 1]]))?.contains("longer than its message") == true)
        #expect(error(grpcFramed([[0x13, 0x14]]))?.contains("wire type 3") == true, "groups are refused")
        #expect(error(grpcFramed([[0x02, 0]]))?.contains("field number 0") == true)
        #expect(error(grpcFramed([[0x10, 1]]))?.contains("wrong wire type") == true, "bytes as a varint")
        #expect(error(grpcFramed([[0x08] + [UInt8](repeating: 0xff, count: 9) + [0x02]]))?.contains("beyond 64 bits") == true)
        #expect(error(grpcFramed([[0x0d, 1, 2]]))?.contains("truncated fixed-width") == true)
        #expect(error(grpcFramed([[0x0a, 2, 0x18, 1]])) == nil, "an unknown varint inside metadata (field 3) is skipped")
        #expect(error(grpcFramed([[0x0a, 2, 0x10, 1]]))?.contains("metadata string field with the wrong wire type") == true)
    }
}
