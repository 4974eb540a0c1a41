import BackupOperator
import Bbolt
import Foundation
import NIOCore
import S3
import S3TestSupport
import SnapshotPipeline
import Testing
import TestSupport

/// The restore's download against a store that misbehaves mid-object (a proxy in front of moto
/// that passes the first MiB of each response, then stalls or drops the connection): a named
/// error instead of a hang or a transport's.
@Suite("Restore download under faults")
struct RestoreDownloadTests {
    /// An 8 MiB object (a sound bbolt layout: the structure check would reject other bytes at
    /// once) behind a proxy `fault` sets up; `body` downloads it as a restore does, with
    /// `stallTimeout`. Returns what the download threw, as `E`.
    func download<E: Error>(_ expected: E.Type, stallTimeout: Duration = .seconds(120), through fault: (FaultProxy) -> Void,
                            _ check: (E?, _ object: String, FaultProxy) -> Void) async throws {
        let server = try S3TestServer.named("AUTH")
        let direct = try server.client()
        let key = "restore-fault/\(UUID().uuidString.lowercased()).db"
        var snapshot = BboltLayout.emptyDatabasePrefix(pageCount: 2048)
        snapshot += [UInt8](repeating: 0, count: 8 * 1024 * 1024 - snapshot.count)
        try await direct.putObject(bucket: server.bucket, key: key, body: ByteBuffer(bytes: snapshot))
        let url = try #require(URLComponents(string: server.endpoint))
        let proxy = try await FaultProxy(targetHost: "127.0.0.1", targetPort: url.port ?? 80)
        fault(proxy)
        let configuration = try server.configuration(endpoint: "http://127.0.0.1:\(proxy.port)")
        let caught = await TestHelpers.caught(E.self) {
            try await S3Client.withClient(configuration) { client in
                _ = try await SnapshotRestore.download(
                    BackupDestination(s3: configuration, bucket: server.bucket, key: key), with: client,
                    encoding: SnapshotEncoding(compressed: false, encrypted: false), identities: [], record: nil,
                    stallTimeout: stallTimeout) { _ in }
            }
        }
        check(caught, "s3://\(server.bucket)/\(key)", proxy)
        try await direct.deleteObject(bucket: server.bucket, key: key)
        try await direct.shutdown()
        try await proxy.shutdown()
    }

    @Test("a download that stops delivering fails with DownloadStalled after the stall bound, not the request timeout")
    func stalledDownload() async throws {
        try await download(DownloadStalled.self, stallTimeout: .seconds(2), through: { $0.stallDownstream(afterBytes: 1024 * 1024) }) { stalled, object, _ in
            // DownloadStalled (not the request timeout's error) says the stall bound ended it.
            #expect((stalled?.seconds ?? 0) >= 2, "idle for at least the bound: \(String(describing: stalled))")
            #expect(stalled?.object == object)
        }
    }

    @Test("a download cut mid-body is an S3 error naming the object and how far it got, not an HTTP parser's")
    func cutDownload() async throws {
        try await download(S3Error.self, through: { $0.cutDownstream(afterBytes: 1024 * 1024) }) { broken, object, proxy in
            #expect(broken?.kind == .incompleteDownload, "\(String(describing: broken))")
            #expect(broken?.description.contains(object) == true)
            #expect(broken?.description.contains("broke off after") == true && broken?.description.contains("of 8388608 bytes") == true,
                    "\(String(describing: broken))")
            #expect(proxy.cuts >= 1)
        }
    }
}
