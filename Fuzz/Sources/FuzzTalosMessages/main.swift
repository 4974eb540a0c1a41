import Foundation
import SwiftProtobuf
import TalosMessages

/// A message from a Talos node (the endpoint is a tenant's): the first byte picks the type of
/// the answers the client reads, the rest is its protobuf encoding. Decoding gives a message
/// or an error, never a trap; a decoded message encodes and decodes to itself.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTalosMessages(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: start, count: count)
    guard let selector = input.first else { return 0 }
    let bytes = Data(input.dropFirst())
    switch selector % 6 {
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
