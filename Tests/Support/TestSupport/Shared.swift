import Foundation
import Synchronization
import Testing

/// The repository root, found from this file's path (Tests/Support/TestSupport/Shared.swift).
public let repositoryRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// A value shared between tasks in a test.
public final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    public init(_ value: Value) { mutex = Mutex(value) }
    public func withLock<Result>(_ body: (inout sending Value) throws -> sending Result) rethrows -> sending Result {
        try mutex.withLock(body)
    }
}

/// Polls `condition` every 10 ms until it holds; after `timeout`, records an issue and throws.
/// The bound only keeps a broken test from hanging: it is far beyond what the condition takes,
/// also on a loaded machine, and no test may rely on it firing.
public func eventually(
    timeout: Duration = .seconds(120), _ what: String, sourceLocation: SourceLocation = #_sourceLocation,
    _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(10))
    }
    Issue.record("timed out waiting for: \(what)", sourceLocation: sourceLocation)
    throw TimeoutError(what: what)
}

/// What ``eventually(timeout:_:sourceLocation:_:)`` throws when the condition never held.
public struct TimeoutError: Error {
    public var what: String
}
