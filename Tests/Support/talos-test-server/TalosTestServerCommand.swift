import ArgumentParser
import Foundation
import TalosTesting
import UnixSignals

/// `talos-test-server`: the Talos test double as a process, for end-to-end tests that run the
/// operator separately.
@main
struct TalosTestServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "talos-test-server",
        abstract: "A Talos node for tests: MachineService over mutual TLS, snapshots from a real etcd, recovery into a new one. Runs until SIGTERM.")

    @Option(help: "Port to listen on (127.0.0.1; 0 picks a free one).")
    var port: Int = 0

    @Option(help: "Client URL of the etcd to snapshot, e.g. http://127.0.0.1:2379. Without it the node waits to be bootstrapped: recover it with EtcdRecover and Bootstrap (recover_etcd), and it prints \"recovered etcd at <client URL>\".")
    var etcdEndpoint: String?

    @Option(help: "Directory to write ca.crt and admin/etcd-backup/reader talosconfigs into.")
    var pkiDir: String

    @Option(help: "Serve generated snapshots of this many MiB instead of real ones (for benchmarks).")
    var syntheticSnapshotMib: Int?

    @Flag(help: "Generated snapshots compress about fourfold (the last 3 KiB of each 4 KiB page zero) instead of being random.")
    var syntheticCompressible = false

    @Option(help: "Bytes per message of a snapshot stream (default: 1024, as Talos sends them).")
    var messageBytes: Int = TalosTestServer.talosMessageSize

    func run() async throws {
        let server = try TalosTestServer(etcdEndpoint: etcdEndpoint, port: port) { line in
            FileHandle.standardOutput.write(Data((line + "\n").utf8))  // unbuffered: a test reads it while this runs
        }
        server.serveSyntheticSnapshots(size: syntheticSnapshotMib.map { $0 * 1024 * 1024 }, compressible: syntheticCompressible)
        server.setMessageSize(messageBytes)
        let directory = URL(fileURLWithPath: pkiDir)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await server.run {
                    do {
                        try server.writePKI(to: directory)
                        print("listening on \(server.endpoint); talosconfigs in \(directory.path)")
                    } catch {
                        FileHandle.standardError.write(Data("cannot write \(directory.path): \(error)\n".utf8))
                    }
                }
            }
            group.addTask {
                for await _ in await UnixSignalsSequence(trapping: .sigterm, .sigint) { return }
            }
            try await group.next()
            group.cancelAll()
        }
    }
}
