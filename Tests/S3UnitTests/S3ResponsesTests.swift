import Foundation
@testable import S3Responses
import Testing

/// S3's answers as moto, Ceph RGW and AWS write them, read by the project's own XML reader, and
/// what that reader refuses (the fuzz target FuzzS3Responses covers the rest).
@Suite("S3 XML answers")
struct S3ResponsesTests {
    func data(_ text: String) -> Data { Data(text.utf8) }

    @Test("a ListMultipartUploads page: uploads and the next markers")
    func multipartUploads() throws {
        let page = try #require(S3Responses.multipartUploadsPage(data("""
            <?xml version="1.0" encoding="UTF-8"?>
            <ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
              <Bucket>backups</Bucket>
              <NextKeyMarker>b.db</NextKeyMarker><NextUploadIdMarker>2~abc</NextUploadIdMarker>
              <IsTruncated>true</IsTruncated>
              <Upload><Key>a &amp; b.db</Key><UploadId>2~xyz</UploadId></Upload>
              <Upload><Key>no-id.db</Key></Upload>
            </ListMultipartUploadsResult>
            """)))
        #expect(page.uploads == [S3MultipartUploadInfo(key: "a & b.db", uploadID: "2~xyz")])
        #expect(page.next == S3Responses.UploadMarkers(key: "b.db", uploadID: "2~abc"))
    }

    @Test("a ListObjectVersions page: versions and delete markers, entries without an id skipped, the next markers")
    func objectVersions() throws {
        let page = try #require(S3Responses.objectVersionsPage(data("""
            <ListVersionsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
              <IsTruncated>true</IsTruncated><NextKeyMarker>a.db</NextKeyMarker><NextVersionIdMarker>v1</NextVersionIdMarker>
              <Version><Key>a.db</Key><VersionId>v3</VersionId><IsLatest>false</IsLatest></Version>
              <DeleteMarker><Key>a.db</Key><VersionId>v4</VersionId><IsLatest>true</IsLatest></DeleteMarker>
              <Version><Key>a.db</Key><VersionId></VersionId></Version>
              <Version><Key>b.db</Key></Version>
            </ListVersionsResult>
            """)))
        #expect(page.versions == [S3ObjectVersion(key: "a.db", versionID: "v3", isDeleteMarker: false),
                                  S3ObjectVersion(key: "a.db", versionID: "v4", isDeleteMarker: true)])
        #expect(page.next == S3Responses.UploadMarkers(key: "a.db", uploadID: "v1"))
        #expect(S3Responses.objectVersionsPage(data("<ListVersionsResult><IsTruncated>false</IsTruncated></ListVersionsResult>"))?.next == nil)
    }

    @Test("a ListObjectsV2 page: quoted ETags decoded, the continuation token only when truncated")
    func objects() throws {
        let page = try #require(S3Responses.objectsPage(data("""
            <ListBucketResult><IsTruncated>false</IsTruncated><NextContinuationToken>t</NextContinuationToken>
            <Contents><Key>x.db</Key><Size>434234</Size><ETag>&quot;9b2c&quot;</ETag></Contents></ListBucketResult>
            """)))
        #expect(page == S3ObjectPage(objects: [S3ObjectSummary(key: "x.db", size: 434_234, etag: "\"9b2c\"")], nextContinuationToken: nil))
    }

    @Test("a negative or non-numeric Size makes the page unreadable", arguments: ["-1", "1e3", "9223372036854775808", " 5"])
    func badSize(size: String) {
        #expect(S3Responses.objectsPage(data("<ListBucketResult><Contents><Key>x</Key><Size>\(size)</Size></Contents></ListBucketResult>")) == nil)
    }

    @Test("an Error document: code, message, request id; a 200 answer that is an Error")
    func errors() {
        let body = data("<?xml version=\"1.0\"?>\n<Error><Code>NoSuchBucket</Code><Message>The bucket &lt;b&gt; does not exist</Message><RequestId>tx1</RequestId></Error>\n")
        #expect(S3Responses.errorDocument(body) == .init(code: "NoSuchBucket", message: "The bucket <b> does not exist", requestID: "tx1"))
        #expect(S3Responses.result(body) == .error(code: "NoSuchBucket", message: "The bucket <b> does not exist"))
        #expect(S3Responses.result(data("<CopyObjectResult><ETag>\"e\"</ETag></CopyObjectResult>")) == .etag("\"e\""))
        #expect(S3Responses.errorDocument(data("<html><body>502 Bad Gateway</body>")) == nil)
        #expect(S3Responses.errorDocument(Data()) == nil)
    }

    @Test("the CompleteMultipartUpload document reads back as written")
    func completeDocument() {
        let parts = [S3Responses.CompletedPart(number: 2, etag: "\"b<&>\"", checksumSHA256: "c2hh"), .init(number: 1, etag: " a ")]
        let document = S3Responses.completeMultipartUploadDocument(parts)
        #expect(S3Responses.completedParts(data(document)) == parts.sorted { $0.number < $1.number })
    }

    /// Found by FuzzS3Responses: a `<` escaped as `&lt;` and followed by a combining mark
    /// (U+033C) made one Swift `Character` of `;` and the mark, so a reader that looked for the
    /// reference's end by `Character` did not find it.
    @Test("escaped characters followed by combining marks read back")
    func combiningMarks() {
        let parts = [S3Responses.CompletedPart(number: 1, etag: "<\u{33C}&\u{301}>\u{300}\"\u{308}")]
        #expect(S3Responses.completedParts(data(S3Responses.completeMultipartUploadDocument(parts))) == parts)
        #expect(S3XMLElement.parse(data("<a>&lt;\u{33C}</a>"))?.text == "<\u{33C}")
        #expect(S3XMLElement.parse(data("<a\u{301}></\u{E1}>")) == nil, "names compare by bytes, not by canonical equivalence")
    }

    @Test("what S3 documents may hold: a byte order mark, comments, CDATA, character references, CRLF")
    func syntax() throws {
        let element = try #require(S3XMLElement.parse(Data([0xEF, 0xBB, 0xBF]) + data(
            "<!-- c --><?pi x?><R a='1' b=\"2\"><A><![CDATA[x<&y]]>&#65;&#x42;</A><B/><C>1\r\n2\r3</C></R><!-- end -->\n")))
        #expect(element["A"] == "x<&yAB")
        #expect(element["B"] == "")
        #expect(element["C"] == "1\n2\n3")
    }

    @Test("what is refused", arguments: [
        "<!DOCTYPE r [<!ENTITY a \"x\">]><r>&a;</r>",  // a document type declaration
        "<r><!ENTITY a \"x\"></r>",
        "<r>&unknown;</r>",
        "<r>&#0;</r>",
        "<r>&#xD800;</r>",
        "<r>& b</r>",
        "<a></b>",
        "<a><b></a></b>",
        "<a>",
        "<a/><b/>",
        "<a/>trailing",
        "text<a/>",
        "<a b></a>",
        "<a b=c></a>",
        "<a b=\"c></a>",
        "<a><![CDATA[x</a>",
        "<a><!-- x</a>",
        "<!--><a/>",  // a comment's opener is not its end
        "<?><a/>",
        "<a><!--></a>",
        "",
    ])
    func refused(document: String) {
        #expect(S3XMLElement.parse(data(document)) == nil)
    }

    /// Found in review: escaping appended to a scalar view, which copies it each time, so an
    /// ETag of a few hundred KiB of `"` took minutes. Linear now; this would not finish otherwise.
    @Test("a 4 MiB ETag of characters to escape writes and reads back")
    func longEscapedText() {
        let etag = String(repeating: "\"<&>", count: 1 << 20)
        let parts = [S3Responses.CompletedPart(number: 1, etag: etag)]
        #expect(S3Responses.completedParts(data(S3Responses.completeMultipartUploadDocument(parts))) == parts)
    }

    @Test("the number of elements is bounded: 100,000 read, one more refused")
    func elementCount() {
        func document(_ count: Int) -> Data { data("<r>" + String(repeating: "<a/>", count: count - 1) + "</r>") }
        #expect(S3XMLElement.parse(document(S3XMLElement.maximumElements))?.children.count == S3XMLElement.maximumElements - 1)
        #expect(S3XMLElement.parse(document(S3XMLElement.maximumElements + 1)) == nil)
    }

    @Test("bytes that are not UTF-8 are refused")
    func notUTF8() {
        #expect(S3XMLElement.parse(Data([0x3C, 0x61, 0x3E, 0xFF, 0x3C, 0x2F, 0x61, 0x3E])) == nil)
    }

    @Test("nesting is bounded: 32 levels read, 33 refused")
    func depth() {
        func nested(_ depth: Int) -> Data { data(String(repeating: "<a>", count: depth) + String(repeating: "</a>", count: depth)) }
        #expect(S3XMLElement.parse(nested(S3XMLElement.maximumDepth)) != nil)
        #expect(S3XMLElement.parse(nested(S3XMLElement.maximumDepth + 1)) == nil)
        #expect(S3XMLElement.parse(nested(100_000)) == nil)
    }
}
