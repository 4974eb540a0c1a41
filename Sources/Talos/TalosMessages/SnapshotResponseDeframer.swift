import NIOCore

/// Turns the HTTP/2 DATA of an EtcdSnapshot response into snapshot bytes, without a protobuf
/// library or a copy per message: a run of gRPC messages (a 5-byte prefix, then the message),
/// each a `common.Data` whose field 2 holds up to 1 KiB of the snapshot (Talos' message size).
///
/// The bytes come from a node the operator does not trust, so everything is checked and
/// bounded: a message may not be compressed (the client offers no compression) nor larger than
/// 4 MiB (gRPC's default receive limit), the protobuf must be well formed (unknown fields are
/// skipped as protobuf says, groups are refused), and a message whose metadata carries an error
/// (Talos' proxy reports an upstream failure that way) ends the stream with that error instead
/// of being taken as data. At most one message is held back between calls (one split across
/// DATA frames).
public struct SnapshotResponseDeframer: Sendable {
    /// gRPC's default limit on a received message; Talos sends 1,029 bytes.
    public static let maximumMessageBytes = 4 << 20

    /// The start of a message split across frames.
    private var pending: ByteBuffer?

    public init() {}

    /// True while a message has begun but not ended: the stream may not end here.
    public var isInsideMessage: Bool { (pending?.readableBytes ?? 0) > 0 }

    /// Appends the snapshot bytes of every complete message in `frame` (after what earlier
    /// frames left) to `output`, keeping a trailing partial message for the next frame.
    public mutating func process(_ frame: ByteBuffer, into output: inout ByteBuffer) throws(SnapshotResponseError) {
        output.reserveCapacity(minimumWritableBytes: frame.readableBytes)
        var buffer: ByteBuffer
        if var held = pending {
            pending = nil  // first, so that `held` owns its storage and the append does not copy it
            var frame = frame
            held.writeBuffer(&frame)
            buffer = held
        } else {
            buffer = frame
        }
        while buffer.readableBytes >= 5,
              let flag = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self),
              let length = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt32.self) {
            guard flag == 0 else {
                throw .malformed("the node sent a compressed or unknown gRPC message (flag \(flag)); none was asked for")
            }
            guard length <= Self.maximumMessageBytes else {
                throw .tooLarge("the node sent a gRPC message of \(length) bytes, more than the \(Self.maximumMessageBytes) allowed")
            }
            guard buffer.readableBytes >= 5 + Int(length) else { break }
            buffer.moveReaderIndex(forwardBy: 5)
            try Self.appendData(of: buffer.readSlice(length: Int(length))!, to: &output)
        }
        if buffer.readableBytes > 0 { pending = buffer }
    }

    /// The `bytes` (field 2) of one encoded `common.Data` appended to `output`; its metadata's
    /// `error` (field 1, then field 2 of that) thrown as Unavailable. Repeated fields follow
    /// protobuf: the last `bytes` counts, metadata merges.
    static func appendData(of message: ByteBuffer, to output: inout ByteBuffer) throws(SnapshotResponseError) {
        var reader = message
        var bytes: ByteBuffer?
        var hostname = "", error = ""
        while reader.readableBytes > 0 {
            let (field, value) = try readField(&reader)
            switch (field, value) {
            case (1, .lengthDelimited(var metadata)):
                while metadata.readableBytes > 0 {
                    switch try readField(&metadata) {
                    case (1, .lengthDelimited(let text)): hostname = String(buffer: text)
                    case (2, .lengthDelimited(let text)): error = String(buffer: text)
                    case (1, _), (2, _): throw malformed("a metadata string field with the wrong wire type")
                    default: break
                    }
                }
            case (2, .lengthDelimited(let data)): bytes = data
            case (1, _), (2, _): throw malformed("field \(field) with the wrong wire type")
            default: break
            }
        }
        if !error.isEmpty {
            throw .nodeFailed("snapshot stream failed on node \(hostname.prefix(256)): \(error.prefix(1024))")
        }
        if var bytes { output.writeBuffer(&bytes) }
    }

    /// A protobuf field's value, as far as this decoder needs to know it.
    enum FieldValue {
        case lengthDelimited(ByteBuffer)
        case scalar
    }

    /// Reads one field (its number and value) off `reader`.
    static func readField(_ reader: inout ByteBuffer) throws(SnapshotResponseError) -> (UInt64, FieldValue) {
        let key = try readVarint(&reader)
        let field = key >> 3
        guard field > 0 else { throw malformed("field number 0") }
        switch key & 7 {
        case 0:
            _ = try readVarint(&reader)
            return (field, .scalar)
        case 1, 5:
            let width = key & 7 == 1 ? 8 : 4
            guard reader.readableBytes >= width else { throw malformed("a truncated fixed-width field") }
            reader.moveReaderIndex(forwardBy: width)
            return (field, .scalar)
        case 2:
            let length = try readVarint(&reader)
            guard length <= UInt64(reader.readableBytes) else { throw malformed("a field longer than its message") }
            return (field, .lengthDelimited(reader.readSlice(length: Int(length))!))
        default:
            throw malformed("wire type \(key & 7), which common.Data does not use")
        }
    }

    /// A base-128 varint of at most 10 bytes that fits in 64 bits.
    static func readVarint(_ reader: inout ByteBuffer) throws(SnapshotResponseError) -> UInt64 {
        var value: UInt64 = 0
        for index in 0..<10 {
            guard let byte = reader.readInteger(as: UInt8.self) else { throw malformed("a truncated varint") }
            if index == 9 && byte > 1 { throw malformed("a varint beyond 64 bits") }
            value |= UInt64(byte & 0x7f) << (7 * UInt64(index))
            if byte < 0x80 { return value }
        }
        throw malformed("a varint beyond 64 bits")
    }

    static func malformed(_ what: String) -> SnapshotResponseError {
        .malformed("the node sent a malformed common.Data message: \(what)")
    }
}

/// Why the DATA of an EtcdSnapshot response cannot be taken as snapshot bytes; the Talos
/// client reports each as gRPC would (Internal, ResourceExhausted, Unavailable).
public enum SnapshotResponseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Not gRPC framing or not a `common.Data` message.
    case malformed(String)
    /// A message beyond ``SnapshotResponseDeframer/maximumMessageBytes``.
    case tooLarge(String)
    /// The message's metadata carries an error: the node (or Talos' proxy in front of it)
    /// failed.
    case nodeFailed(String)

    public var description: String {
        switch self {
        case .malformed(let message), .tooLarge(let message), .nodeFailed(let message): message
        }
    }
}
