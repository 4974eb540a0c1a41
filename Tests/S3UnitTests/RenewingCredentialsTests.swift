import Foundation
import S3
import S3Responses
import Synchronization
import Testing

/// A clock and an issuer the test controls: what ``RenewingCredentials`` decides, without a network.
final class Issuer: Sendable {
    private let state = Mutex<(time: Date, issued: Int, lifetime: TimeInterval?, failing: Bool)>((Date(timeIntervalSince1970: 1_800_000_000), 0, 3600, false))
    var now: Date { state.withLock { $0.time } }
    var issued: Int { state.withLock { $0.issued } }
    func advance(_ seconds: TimeInterval) { state.withLock { $0.time = $0.time.addingTimeInterval(seconds) } }
    func set(lifetime: TimeInterval?) { state.withLock { $0.lifetime = lifetime } }
    func set(failing: Bool) { state.withLock { $0.failing = failing } }

    func issue() async throws -> TemporaryCredentials {
        try await Task.sleep(for: .milliseconds(20))
        return try state.withLock { state in
            if state.failing { throw S3CredentialsError(source: "test issuer", message: "down", retryable: true) }
            state.issued += 1
            return TemporaryCredentials(accessKeyID: "key-\(state.issued)", secretAccessKey: "s", sessionToken: "t",
                                        expiration: state.lifetime.map { state.time.addingTimeInterval($0) })
        }
    }

    func source() -> RenewingCredentials {
        RenewingCredentials(now: { self.now }) { try await self.issue() }
    }
}

@Suite("Renewing credentials: shared fetches, renewal before expiry, failures, nonsense expirations")
struct RenewingCredentialsTests {
    @Test("a hundred callers at once share one fetch")
    func shared() async throws {
        let issuer = Issuer()
        let source = issuer.source()
        let keys = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<100 { group.addTask { try await source.credentials().accessKeyID } }
            return try await group.reduce(into: Set<String>()) { $0.insert($1) }
        }
        #expect(keys == ["key-1"])
        #expect(await source.fetchCount == 1)
    }

    @Test("in their last ten minutes the held credentials serve while new ones are fetched; then the new ones")
    func renewsAhead() async throws {
        let issuer = Issuer()
        let source = issuer.source()
        #expect(try await source.credentials().accessKeyID == "key-1")
        issuer.advance(49 * 60)
        #expect(try await source.credentials().accessKeyID == "key-1")
        #expect(await source.fetchCount == 1, "not yet due")
        issuer.advance(2 * 60)
        #expect(try await source.credentials().accessKeyID == "key-1", "due: the held ones, at once")
        #expect(await source.fetchCount == 2)
        await source.settled()
        #expect(issuer.issued == 2)
        #expect(try await source.credentials().accessKeyID == "key-2")
    }

    @Test("a failing issuer: the held credentials serve until they expire, renewals are tried every 30 s, then the error")
    func failures() async throws {
        let issuer = Issuer()
        let source = issuer.source()
        _ = try await source.credentials()
        issuer.set(failing: true)
        issuer.advance(55 * 60)
        for _ in 0..<5 { #expect(try await source.credentials().accessKeyID == "key-1") }
        await source.settled()
        for _ in 0..<5 { #expect(try await source.credentials().accessKeyID == "key-1") }
        await source.settled()
        #expect(await source.fetchCount == 2, "one renewal, not one per request, nor one per request after it failed")
        issuer.advance(31)
        _ = try await source.credentials()
        #expect(await source.fetchCount == 3, "tried again after the backoff")
        await source.settled()
        issuer.advance(10 * 60)
        await #expect(throws: S3CredentialsError.self) { _ = try await source.credentials() }
        issuer.set(failing: false)
        #expect(try await source.credentials().accessKeyID == "key-2")
    }

    @Test("an expiration already past, or none: kept 30 s at least, an hour at most without one; never a fetch per request")
    func nonsense() async throws {
        let issuer = Issuer()
        issuer.set(lifetime: -3600)
        let source = issuer.source()
        for _ in 0..<10 { _ = try await source.credentials() }
        #expect(await source.fetchCount == 1)
        issuer.advance(31)
        _ = try await source.credentials()
        #expect(await source.fetchCount == 2)

        let lasting = Issuer()
        lasting.set(lifetime: nil)
        let forever = lasting.source()
        _ = try await forever.credentials()
        lasting.advance(59 * 60)
        _ = try await forever.credentials()
        #expect(await forever.fetchCount == 1)
        lasting.advance(2 * 60)
        _ = try await forever.credentials()
        #expect(await forever.fetchCount == 2, "renewed after an hour")
    }

}
