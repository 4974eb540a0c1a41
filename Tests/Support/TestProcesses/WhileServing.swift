/// Why a test server could not be used.
public struct ServerNeverListened: Error, CustomStringConvertible {
    public var server: String
    public var description: String { "\(server) stopped before listening" }
}

/// Runs `serve` in a child task, waits until it calls the closure it is given (it listens),
/// runs `body`, then cancels the server: the one shape of every `withRunning` of the test
/// servers. A server that ends before listening rethrows its error (or
/// ``ServerNeverListened``) instead of leaving the caller waiting.
public func whileServing<T: Sendable>(
    _ server: String,
    _ serve: @escaping @Sendable (_ listening: @escaping @Sendable () -> Void) async throws -> Void,
    _ body: () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: Void.self) { group in
        let (listening, announce) = AsyncStream<Void>.makeStream()
        group.addTask {
            try await serve {
                announce.yield()
                announce.finish()
            }
        }
        var announcements = listening.makeAsyncIterator()
        guard await announcements.next() != nil else {
            try await group.waitForAll()
            throw ServerNeverListened(server: server)
        }
        do {
            let result = try await body()
            group.cancelAll()
            return result
        } catch {
            group.cancelAll()
            throw error
        }
    }
}
