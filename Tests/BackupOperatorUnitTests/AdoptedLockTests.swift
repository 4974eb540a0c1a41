@testable import BackupOperator
import Foundation
import S3
import Testing

/// An adopted object under S3 Object Lock gets `status.lockedUntil`, so retention waits for its
/// lock as for the operator's own backups; an expired or absent lock gives none.
@Suite("Adoption of locked objects")
struct AdoptedLockTests {
    @Test("lockedUntil from the object's retention date while it holds")
    func lockedUntil() {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        var head = S3ObjectInfo(size: 10, etag: "", metadata: [:])
        #expect(BackupAdoption.status(of: head, key: "p/x.db", bucket: "b", url: "s3://b/p/x.db", now: now).lockedUntil == nil)
        head.objectLockMode = "COMPLIANCE"
        head.objectLockRetainUntil = "2027-01-15T08:00:01Z"
        #expect(BackupAdoption.status(of: head, key: "p/x.db", bucket: "b", url: "s3://b/p/x.db", now: now).lockedUntil?.date
                    == Date(timeIntervalSince1970: 1_800_000_001))
        #expect(BackupAdoption.status(of: head, key: "p/x.db", bucket: "b", url: "s3://b/p/x.db", now: now.addingTimeInterval(86_400 * 60)).lockedUntil == nil,
                "expired")
    }
}
