import Foundation
@testable import S3
import Testing

/// What the client concludes from an object's Object Lock headers, and the retention dates it
/// writes.
@Suite("S3 Object Lock, without a server")
struct ObjectLockUnitTests {
    @Test("HEAD's lock: a legal hold or an unreadable date holds; a past date does not")
    func isLocked() {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        var info = S3ObjectInfo(size: 1, etag: "", metadata: [:])
        #expect(!info.isLocked(at: now), "no lock")
        info.objectLockMode = "COMPLIANCE"
        info.objectLockRetainUntil = "2027-01-15T08:00:01Z"
        #expect(info.isLocked(at: now) && !info.isLocked(at: now.addingTimeInterval(86_400 * 30)))
        info.objectLockRetainUntil = "next tuesday"
        #expect(info.isLocked(at: .distantFuture), "a date that cannot be read is never taken as expired")
        info = S3ObjectInfo(size: 1, etag: "", metadata: [:])
        info.objectLockLegalHold = true
        #expect(info.isLocked(at: .distantFuture))
        let lock = S3WriteSettings.ObjectLock(mode: .governance, retainDays: 30)
        #expect(lock.retainUntil(writtenAt: now) == now.addingTimeInterval(30 * 86_400))
        #expect(S3WriteSettings.ObjectLock(mode: .governance, retention: .milliseconds(1_500)).retainUntil(writtenAt: now)
                    == now.addingTimeInterval(2), "rounded up to the second")
    }
}
