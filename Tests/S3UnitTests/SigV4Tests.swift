import Foundation
import S3
import Testing

/// AWS's published examples ("Signature Calculations for the Authorization Header" and
/// "Query String Authentication" in the Amazon S3 API reference), with their exact signatures.
@Suite("SigV4 against AWS's published examples")
struct SigV4Tests {
    let signer = SigV4Signer(
        credentials: S3Credentials(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        region: "us-east-1")
    let date = Date(timeIntervalSince1970: 1_369_353_600)  // 2013-05-24T00:00:00Z

    func authorization(_ request: SigV4Signer.Request, payloadHash: String) -> String {
        signer.signedHeaders(for: request, payloadHash: payloadHash, date: date).first { $0.0 == "authorization" }!.1
    }

    @Test("GET Object")
    func getObject() {
        let header = authorization(
            .init(method: "GET", host: "examplebucket.s3.amazonaws.com", path: "/test.txt", headers: [("Range", "bytes=0-9")]),
            payloadHash: SigV4Signer.emptyPayloadHash)
        #expect(header == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    }

    @Test("PUT Object")
    func putObject() {
        let header = authorization(
            .init(method: "PUT", host: "examplebucket.s3.amazonaws.com", path: "/test$file.text",
                  headers: [("Date", "Fri, 24 May 2013 00:00:00 GMT"), ("x-amz-storage-class", "REDUCED_REDUNDANCY")]),
            payloadHash: "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072")  // "Welcome to Amazon S3."
        #expect(header == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd")
    }

    @Test("GET Bucket lifecycle (an empty query value)")
    func getLifecycle() {
        let header = authorization(
            .init(method: "GET", host: "examplebucket.s3.amazonaws.com", path: "/", query: [("lifecycle", "")]),
            payloadHash: SigV4Signer.emptyPayloadHash)
        #expect(header.hasSuffix("Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"))
    }

    @Test("GET Bucket (list objects, query parameters sorted)")
    func listObjects() {
        let header = authorization(
            .init(method: "GET", host: "examplebucket.s3.amazonaws.com", path: "/", query: [("prefix", "J"), ("max-keys", "2")]),
            payloadHash: SigV4Signer.emptyPayloadHash)
        #expect(header.hasSuffix("Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"))
    }

    @Test("presigned GET URL")
    func presigned() {
        let url = signer.presignedURL(for: .init(method: "GET", host: "examplebucket.s3.amazonaws.com", path: "/test.txt"), expires: 86400, date: date)
        #expect(url == "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
    }

    @Test("object keys are URI-encoded once, keeping '/'", arguments: [
        ("backups/a b.db", "backups/a%20b.db"),
        ("ns/cp/ünïcode-備份.db", "ns/cp/%C3%BCn%C3%AFcode-%E5%82%99%E4%BB%BD.db"),
        ("a+b~c=d", "a%2Bb~c%3Dd"),
        ("x/y?z#w&v", "x/y%3Fz%23w%26v"),
        ("AZaz09-._~", "AZaz09-._~"),
    ])
    func keyEncoding(key: String, encoded: String) {
        #expect(SigV4Signer.uriEncode(key, keepSlash: true) == encoded)
        #expect(SigV4Signer.uriEncode("a/b", keepSlash: false) == "a%2Fb")
    }

    @Test("credentials never print their secret")
    func redaction() {
        let credentials = S3Credentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "super-secret", sessionToken: "token")
        #expect(!"\(credentials)".contains("super-secret"))
        #expect(!"\(credentials)".contains("token"))
    }
}

@Suite("S3 addressing")
struct AddressingTests {
    let credentials = S3Credentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "secret")

    func url(_ configuration: S3Configuration, bucket: String, key: String) throws -> String {
        let client = try S3Client(configuration: configuration)
        defer { Task { try? await client.shutdown() } }
        return client.objectURL(bucket: bucket, key: key)
    }

    @Test("AWS: virtual-hosted in the region; path-style when asked or when the bucket has dots")
    func aws() throws {
        let aws = S3Configuration(region: "us-west-2", credentials: credentials)
        #expect(try url(aws, bucket: "my-etcd-backups", key: "a b/c.db") == "https://my-etcd-backups.s3.us-west-2.amazonaws.com/a%20b/c.db")
        #expect(try url(aws, bucket: "backups.example.com", key: "c.db") == "https://s3.us-west-2.amazonaws.com/backups.example.com/c.db")
        var pathStyle = aws
        pathStyle.forcePathStyle = true
        #expect(try url(pathStyle, bucket: "my-etcd-backups", key: "c.db") == "https://s3.us-west-2.amazonaws.com/my-etcd-backups/c.db")
    }

    @Test("custom endpoint: path-style by default, virtual-hosted when forcePathStyle is false")
    func customEndpoint() throws {
        let minio = S3Configuration(region: "us-east-1", endpoint: "https://minio.example.com:9000", credentials: credentials)
        #expect(try url(minio, bucket: "backups", key: "x.db") == "https://minio.example.com:9000/backups/x.db")
        var virtual = minio
        virtual.forcePathStyle = false
        #expect(try url(virtual, bucket: "backups", key: "x.db") == "https://backups.minio.example.com:9000/x.db")
        // The host an endpoint policy judges is the one requests go to.
        #expect(S3Client.requestHost(minio, bucket: "backups") == "minio.example.com")
        #expect(S3Client.requestHost(virtual, bucket: "backups") == "backups.minio.example.com")
        #expect(S3Client.requestHost(S3Configuration(region: "eu-west-1", credentials: credentials), bucket: "b") == "b.s3.eu-west-1.amazonaws.com")
        let literal = S3Configuration(region: "us-east-1", endpoint: "http://[fd00:ec2::254]:80", credentials: credentials)
        #expect(S3Client.requestHost(literal, bucket: "b") == "fd00:ec2::254")
        #expect(try url(literal, bucket: "b", key: "k") == "http://[fd00:ec2::254]:80/b/k")
    }

    @Test("a region that could change the AWS host name (a dot, slash, colon, space, 65 characters) is refused before any request; real ones pass",
          arguments: ["evil.example.com#", "a/b", "x:443", "us east", String(repeating: "a", count: 65), ""])
    func badRegion(_ region: String) {
        let error = #expect(throws: S3Error.self) { _ = try S3Client(configuration: S3Configuration(region: region, credentials: credentials)) }
        #expect(error?.code == "InvalidRegion")
        #expect(error?.description.contains("1 to 64 letters, digits, '-' and '_'") == true, "\(String(describing: error))")
    }

    @Test("regions in use pass", arguments: ["us-east-1", "default", "auto", "fr-par", "nyc3", "eu_west"])
    func goodRegion(_ region: String) async throws {
        let client = try S3Client(configuration: S3Configuration(region: region, credentials: credentials))
        try await client.shutdown()
    }

    @Test("a CA bundle that is not PEM is refused with a clear error")
    func badCABundle() {
        var configuration = S3Configuration(region: "us-east-1", credentials: credentials)
        configuration.caBundlePEM = Array("not a certificate".utf8)
        #expect(throws: S3Error.self) { _ = try S3Client(configuration: configuration) }
    }
}

/// A size hint comes from outside (a Talos node's EtcdStatus): any value is safe.
@Suite("Multipart part sizes from a size hint")
struct PartSizeHintTests {
    @Test("a hint raises the first part so 10,000 parts cover it, at most to 64 MiB; negative, zero and Int64.max neither trap nor take memory")
    func hints() {
        let base = 8 * 1024 * 1024
        #expect(MultipartUploader.firstPartSize(partSize: base, sizeHint: nil) == base)
        #expect(MultipartUploader.firstPartSize(partSize: base, sizeHint: 0) == base)
        #expect(MultipartUploader.firstPartSize(partSize: base, sizeHint: -1) == base)
        #expect(MultipartUploader.firstPartSize(partSize: base, sizeHint: Int64.min) == base)
        #expect(MultipartUploader.firstPartSize(partSize: base, sizeHint: 2 * 1024 * 1024 * 1024) == base, "2 GiB fits 10,000 parts of 8 MiB")
        // 100 GiB needs 10,737,419 bytes per part (rounded up).
        #expect(MultipartUploader.firstPartSize(partSize: base, sizeHint: 100 * 1024 * 1024 * 1024) == 10_737_419)
        #expect(MultipartUploader.firstPartSize(partSize: base, sizeHint: 5 * 1024 * 1024 * 1024 * 1024) == MultipartUploader.maximumHintedPartSize)
        #expect(MultipartUploader.firstPartSize(partSize: base, sizeHint: Int64.max) == MultipartUploader.maximumHintedPartSize)
        #expect(MultipartUploader.firstPartSize(partSize: base, sizeHint: Int64.max - 1) == MultipartUploader.maximumHintedPartSize)
        #expect(MultipartUploader.firstPartSize(partSize: base, sizeHint: 1 << 62) == MultipartUploader.maximumHintedPartSize)
    }
}
