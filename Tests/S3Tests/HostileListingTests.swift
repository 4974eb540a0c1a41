import Foundation
import Hummingbird
import S3
import Synchronization
import TestSupport
import Testing

/// A server that answers every listing with the same truncated page: what a broken or hostile
/// S3 endpoint (a tenant chooses the endpoint) can send. Counts the requests it got.
enum RepeatingListingServer {
    /// Runs `body` with the server listening on a loopback port of its own (bound as port 0, so
    /// no other test can take it first); `page(n)` is the body of the n-th answer (from 0).
    static func with<T: Sendable>(page: @escaping @Sendable (Int) -> String,
                                  _ body: (_ endpoint: String, _ requests: @escaping @Sendable () -> Int) async throws -> T) async throws -> T {
        let counter = Counter()
        return try await whileServing("repeating listing server", { listening in
            let router = Router()
            router.get("/**") { _, _ -> Response in
                let number = counter.next()
                return Response(status: .ok, headers: [.contentType: "application/xml"],
                                body: .init(byteBuffer: ByteBuffer(string: page(number))))
            }
            let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                                  onServerRunning: { channel in
                                      counter.port.withLock { $0 = channel.localAddress?.port ?? 0 }
                                      listening()
                                  },
                                  logger: quietLogger("listing"))
            try await app.run()
        }) {
            try await body("http://127.0.0.1:\(counter.port.withLock { $0 })", { counter.count })
        }
    }

    final class Counter: Sendable {
        private let value = Mutex(0)
        let port = Mutex(0)
        func next() -> Int { value.withLock { current in defer { current += 1 }; return current } }
        var count: Int { value.withLock { $0 } }
    }
}

@Suite("Paged listings from a server that repeats itself")
struct HostileListingTests {
    func client(_ endpoint: String) throws -> S3Client {
        try S3Client(configuration: S3Configuration(region: "us-east-1", endpoint: endpoint, credentials: S3Credentials(accessKeyID: "k", secretAccessKey: "s"),
                                                    maxAttempts: 1))
    }

    @Test("ListMultipartUploads answering the marker it was asked for: an error after the second page, not a loop")
    func uploadsMarkerDoesNotAdvance() async throws {
        let page = """
            <ListMultipartUploadsResult><IsTruncated>true</IsTruncated><NextKeyMarker>a</NextKeyMarker>\
            <NextUploadIdMarker>1</NextUploadIdMarker><Upload><Key>a</Key><UploadId>1</UploadId></Upload></ListMultipartUploadsResult>
            """
        try await RepeatingListingServer.with(page: { _ in page }) { endpoint, requests in
            let client = try client(endpoint)
            let error = await TestHelpers.caught(S3Error.self) { _ = try await client.listMultipartUploads(bucket: "b") }
            try await client.shutdown()
            #expect(error?.code == "MalformedResponse")
            #expect(error?.description.contains("did not advance") == true, "\(String(describing: error))")
            #expect(requests() == 2, "the first page, then the one that repeated its marker")
        }
    }

    @Test("ListObjectsV2 whose continuation tokens always advance: an error at the page limit, not an endless listing")
    func objectsNeverEnd() async throws {
        try await RepeatingListingServer.with(page: { number in
            "<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>t\(number)</NextContinuationToken></ListBucketResult>"
        }) { endpoint, requests in
            let client = try client(endpoint)
            let error = await TestHelpers.caught(S3Error.self) { _ = try await client.listAllObjects(bucket: "b", prefix: "p") }
            try await client.shutdown()
            #expect(error?.code == "ListingTooLong")
            #expect(error?.description.contains("more than \(S3Client.maximumListingPages) pages under prefix \"p\"") == true, "\(String(describing: error))")
            #expect(requests() == S3Client.maximumListingPages)
        }
    }

    @Test("ListObjectVersions of one key answering 400 versions a page: ListingTooLong at the caller's limit, after three pages, not a hundred thousand entries")
    func versionsBeyondTheLimit() async throws {
        try await RepeatingListingServer.with(page: { number in
            let versions = (0..<400).map { "<Version><Key>k.db</Key><VersionId>v\(number)-\($0)</VersionId></Version>" }.joined()
            return "<ListVersionsResult><IsTruncated>true</IsTruncated><NextKeyMarker>k.db</NextKeyMarker><NextVersionIdMarker>v\(number)</NextVersionIdMarker>\(versions)</ListVersionsResult>"
        }) { endpoint, requests in
            let client = try client(endpoint)
            let error = await TestHelpers.caught(S3Error.self) { _ = try await client.objectVersions(bucket: "b", key: "k.db", limit: 1_000) }
            try await client.shutdown()
            #expect(error?.code == "ListingTooLong" && error?.description.contains("more than 1000 entries") == true, "\(String(describing: error))")
            #expect(requests() == 3)
        }
    }
}
