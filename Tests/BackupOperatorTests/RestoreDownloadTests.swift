import BackupOperator
import Bbolt
import Foundation
import NIOCore
import S3
import S3TestSupport
import TestSupport
import Testing

/// The restore's download against a store that stops sending mid-object (a proxy that passes
/// the first MiB of each response, then nothing): the idle bound ends it with a named error
/// instead of a hang.
@Suite("Restore download under faults")
struct RestoreDownloadTests {
    @Test("a download that stops delivering fails with DownloadStalled after the stall bound, not the request timeout")
    func stalledDownload() async throws {
        let server = try S3TestServer.named("AUTH")
        let direct = try server.client()
        let key = "restore-stall/\(UUID().uuidString.lowercased()).db"
        // A sound bbolt layout (the structure check would reject other bytes at once), 8 MiB.
        var snapshot = BboltLayout.emptyDatabasePrefix(pageCount: 2048)
        snapshot += [UInt8](repeating: 0, count: 8 * 1024 * 1024 - snapshot.count)
        try await direct.putObject(bucket: server.bucket, key: key, body: ByteBuffer(bytes: snapshot))
        let url = try #require(URLComponents(string: server.endpoint))
        let proxy = try await FaultProxy(targetHost: "127.0.0.1", targetPort: url.port ?? 80)
        proxy.stallDownstream(afterBytes: 1024 * 1024)
        let configuration = try server.configuration(endpoint: "http://127.0.0.1:\(proxy.port)")
        let started = ContinuousClock.now
        let stalled = await TestHelpers.caught(DownloadStalled.self) {
            try await S3Client.withClient(configuration) { client in
                _ = try await SnapshotRestore.download(
                    BackupDestination(s3: configuration, bucket: server.bucket, key: key), with: client,
                    encoding: SnapshotEncoding(compressed: false, encrypted: false), identities: [], record: nil,
                    stallTimeout: .seconds(2)
                ) { _ in }
            }
        }
        #expect((2...5).contains(stalled?.seconds ?? 0), "\(String(describing: stalled))")
        #expect(stalled?.object == "s3://\(server.bucket)/\(key)")
        #expect(ContinuousClock.now - started < .seconds(20), "ended by the stall bound")
        try await direct.deleteObject(bucket: server.bucket, key: key)
        try await direct.shutdown()
        try await proxy.shutdown()
    }

    @Test("a download cut mid-body is an S3 error naming the object and how far it got, not an HTTP parser's")
    func cutDownload() async throws {
        let server = try S3TestServer.named("AUTH")
        let direct = try server.client()
        let key = "restore-cut/\(UUID().uuidString.lowercased()).db"
        var snapshot = BboltLayout.emptyDatabasePrefix(pageCount: 2048)
        snapshot += [UInt8](repeating: 0, count: 8 * 1024 * 1024 - snapshot.count)
        try await direct.putObject(bucket: server.bucket, key: key, body: ByteBuffer(bytes: snapshot))
        let url = try #require(URLComponents(string: server.endpoint))
        let proxy = try await FaultProxy(targetHost: "127.0.0.1", targetPort: url.port ?? 80)
        proxy.cutDownstream(afterBytes: 1024 * 1024)
        let configuration = try server.configuration(endpoint: "http://127.0.0.1:\(proxy.port)")
        let broken = await TestHelpers.caught(S3Error.self) {
            try await S3Client.withClient(configuration) { client in
                _ = try await SnapshotRestore.download(
                    BackupDestination(s3: configuration, bucket: server.bucket, key: key), with: client,
                    encoding: SnapshotEncoding(compressed: false, encrypted: false), identities: [], record: nil) { _ in }
            }
        }
        #expect(broken?.kind == .incompleteDownload, "\(String(describing: broken))")
        #expect(broken?.description.contains("s3://\(server.bucket)/\(key)") == true)
        #expect(broken?.description.contains("broke off after") == true && broken?.description.contains("of 8388608 bytes") == true,
                "\(String(describing: broken))")
        #expect(proxy.cuts >= 1)
        try await direct.deleteObject(bucket: server.bucket, key: key)
        try await direct.shutdown()
        try await proxy.shutdown()
    }
}
