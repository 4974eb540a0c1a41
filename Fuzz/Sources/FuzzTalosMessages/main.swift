import Foundation
import NIOCore
import SwiftProtobuf
import TalosMessages

/// A message from a Talos node (the endpoint is a tenant's): the first byte picks the type of
/// the answers the client reads, the rest is its protobuf encoding. Decoding gives a message
/// or an error, never a trap; a decoded message encodes and decodes to itself. Selector 6: the
/// rest is the DATA of an EtcdSnapshot response, for ``SnapshotResponseDeframer``.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTalosMessages(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: start, count: count)
    guard let selector = input.first else { return 0 }
    let bytes = Data(input.dropFirst())
    switch selector % 7 {
    case 6:
        // Two bytes choose where to split; the rest is the stream.
        let rest = input.dropFirst()
        guard rest.count >= 2 else { return 0 }
        deframe(Array(rest.dropFirst(2)), splitAt: Int(rest[rest.startIndex]) << 8 | Int(rest[rest.startIndex + 1]))
    case 0: roundTrip(Common_Data.self, bytes)
    case 1: roundTrip(Machine_EtcdStatusResponse.self, bytes)
    case 2: roundTrip(Machine_VersionResponse.self, bytes)
    case 3: roundTrip(Machine_EtcdRecoverResponse.self, bytes)
    case 4: roundTrip(Machine_BootstrapResponse.self, bytes)
    default: roundTrip(Google_Rpc_Status.self, bytes)
    }
    return 0
}

func roundTrip<M: SwiftProtobuf.Message & Equatable>(_ type: M.Type, _ bytes: Data) {
    guard let message = try? M(serializedBytes: bytes) else { return }
    do {
        let encoded: Data = try message.serializedBytes()
        let decoded = try M(serializedBytes: encoded)
        precondition(decoded == message, "\(M.self) does not round-trip")
    } catch {
        preconditionFailure("a decoded \(M.self) does not encode: \(error)")
    }
}

/// The deframer never traps and never puts out more than it was given; fed in two pieces (split
/// where the selector says) it gives what it gives fed whole, so frame boundaries cannot change a
/// snapshot; and a single message it takes says what swift-protobuf's decoding of it says.
func deframe(_ input: [UInt8], splitAt split: Int) {
    func run(_ pieces: [ArraySlice<UInt8>]) -> ([UInt8], SnapshotResponseError?, Bool) {
        var deframer = SnapshotResponseDeframer()
        var output = ByteBuffer()
        for piece in pieces {
            do {
                try deframer.process(ByteBuffer(bytes: piece), into: &output)
            } catch {
                return (Array(output.readableBytesView), error, deframer.isInsideMessage)
            }
        }
        return (Array(output.readableBytesView), nil, deframer.isInsideMessage)
    }
    let whole = run([input[...]])
    precondition(whole.0.count <= input.count, "more bytes out than in")
    let cut = min(split, input.count)
    let pieces = run([input[..<cut], input[cut...]])
    precondition(pieces.0 == whole.0 && pieces.1 == whole.1 && pieces.2 == whole.2, "splitting the input at \(cut) changed the result")
    // One complete message, taken: swift-protobuf decodes it to the same bytes.
    if whole.1 == nil, !whole.2, input.count >= 5, Int(input[1]) << 24 | Int(input[2]) << 16 | Int(input[3]) << 8 | Int(input[4]) == input.count - 5,
       let decoded = try? Common_Data(serializedBytes: Data(input.dropFirst(5))) {
        precondition(Array(decoded.bytes) == whole.0, "the deframer and swift-protobuf disagree on the bytes")
    }
}
