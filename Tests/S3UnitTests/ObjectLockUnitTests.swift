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

    @Test("a lock satisfies what was asked only in that mode or compliance, for at least the retention less the tolerance; never a legal hold alone")
    func satisfied() {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        func object(_ mode: String?, days: Double?, hold: Bool = false) -> S3ObjectInfo {
            var info = S3ObjectInfo(size: 1, etag: "", metadata: [:])
            info.objectLockMode = mode
            info.objectLockRetainUntil = days.map { ISO8601DateFormatter().string(from: now.addingTimeInterval(($0 * 86_400).rounded())) }
            info.objectLockLegalHold = hold
            return info
        }
        let governance = S3WriteSettings.ObjectLock(mode: .governance, retainDays: 30)
        let compliance = S3WriteSettings.ObjectLock(mode: .compliance, retainDays: 30)
        #expect(governance.isSatisfied(by: object("GOVERNANCE", days: 30), at: now))
        #expect(governance.isSatisfied(by: object("COMPLIANCE", days: 31), at: now), "compliance is stronger")
        #expect(!compliance.isSatisfied(by: object("GOVERNANCE", days: 30), at: now), "governance is weaker")
        #expect(governance.isSatisfied(by: object("GOVERNANCE", days: 30 - 500.0 / 86_400), at: now), "within ten minutes")
        #expect(!governance.isSatisfied(by: object("GOVERNANCE", days: 1), at: now), "a bucket default of a day is shorter")
        #expect(!governance.isSatisfied(by: object(nil, days: nil, hold: true), at: now), "a legal hold alone")
        var unreadable = object("GOVERNANCE", days: 30)
        unreadable.objectLockRetainUntil = "soon"
        #expect(!governance.isSatisfied(by: unreadable, at: now))
        let seconds = S3WriteSettings.ObjectLock(mode: .governance, retention: .seconds(10))
        #expect(seconds.isSatisfied(by: object("GOVERNANCE", days: 7 / 86_400), at: now), "half the retention of room")
        #expect(!seconds.isSatisfied(by: object("GOVERNANCE", days: 3 / 86_400), at: now))
    }
}
