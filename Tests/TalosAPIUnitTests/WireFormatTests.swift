import Foundation
import GRPCCore
import SwiftProtobuf
import TalosAPI
import Testing

/// Pins the generated code to the Talos API's wire format: the method path and the field
/// numbers of siderolabs/talos `api/machine/machine.proto` and `api/common/common.proto`.
@Suite("Talos API wire format")
struct WireFormatTests {
    @Test("method paths are machine.MachineService/<method>")
    func methodPaths() {
        #expect(Machine_MachineService.Method.EtcdSnapshot.descriptor.fullyQualifiedMethod == "machine.MachineService/EtcdSnapshot")
        #expect(Machine_MachineService.Method.EtcdStatus.descriptor.fullyQualifiedMethod == "machine.MachineService/EtcdStatus")
        #expect(Machine_MachineService.Method.Version.descriptor.fullyQualifiedMethod == "machine.MachineService/Version")
    }

    @Test("common.Data carries the snapshot in field 2, metadata in field 1 (hostname 1, error 2)")
    func data() throws {
        var data = Common_Data()
        data.bytes = Data([0xAA, 0xBB])
        data.metadata.hostname = "n"
        data.metadata.error = "e"
        #expect(Array(try data.serializedData()) == [0x0A, 0x06, 0x0A, 0x01, 0x6E, 0x12, 0x01, 0x65, 0x12, 0x02, 0xAA, 0xBB])
    }

    @Test("EtcdMemberStatus: db_size 2, raft_index 5, leader 4, member_id 10")
    func memberStatus() throws {
        var status = Machine_EtcdMemberStatus()
        status.dbSize = 3
        status.leader = 4
        status.raftIndex = 5
        status.memberID = 1
        #expect(Array(try status.serializedData()) == [0x10, 0x03, 0x20, 0x04, 0x28, 0x05, 0x50, 0x01])
        let decoded = try Machine_EtcdMemberStatus(serializedBytes: [0x10, 0x03, 0x20, 0x04, 0x28, 0x05, 0x50, 0x01] as [UInt8])
        #expect(decoded == status)
    }
}
