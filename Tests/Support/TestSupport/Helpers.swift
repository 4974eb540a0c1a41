import Foundation
import Logging
import Testing
// The process helpers are a library of their own (the test servers use them without the
// Testing library); test targets get them through TestSupport.
@_exported import TestProcesses

/// Small helpers the test targets share.
public enum TestHelpers {
    /// A product `swift build` made (an executable of this package), found next to the test
    /// bundle, else under `.build/debug` of the repository.
    public static func builtProduct(_ name: String) -> URL {
        let besideTests = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for directory in [besideTests, besideTests.deletingLastPathComponent()] {
            let candidate = directory.appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        return repositoryRoot.appendingPathComponent(".build/debug/\(name)")
    }

    /// A TCP port on 127.0.0.1 that nothing listens on right now.
    public static func freePort() -> Int { freeLoopbackPort() }

    /// The error of type `E` that `body` throws, or nil when it succeeds; any other error is
    /// recorded as a test issue.
    public static func caught<E: Error>(_ type: E.Type, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> Void) async -> E? {
        do {
            try await body()
            return nil
        } catch let error as E {
            return error
        } catch {
            Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
            return nil
        }
    }
}

/// A logger that only reports critical problems: test servers and clients in tests log at
/// this level so the test output stays readable. `TEST_LOG_LEVEL` (a level's name, such as
/// `warning`) lowers it, to see why a flaky test's attempt failed.
public func quietLogger(_ label: String) -> Logger {
    var logger = Logger(label: label)
    logger.logLevel = ProcessInfo.processInfo.environment["TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
    return logger
}

/// The value of the sample `series` (name and labels exactly as exposed) in a Prometheus
/// text-format scrape, or nil when it is absent.
public func metricSample(_ series: String, in text: String) -> Double? {
    for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
        return Double(line.dropFirst(series.count + 1))
    }
    return nil
}

/// Waits until the calling task is cancelled, then throws `CancellationError`: a peer that
/// never answers.
public func waitUntilCancelled() async throws {
    while true { try await Task.sleep(for: .seconds(3_600)) }
}

/// A fresh directory under the system's temporary directory, named `prefix-<random>`, for a
/// test's files (keys, kubeconfigs, snapshots). Remove it in a `defer` at once
/// (`defer { removeTemporaryDirectory(directory) }`): nothing a test writes may outlive it (a
/// run of the suite once left some 200 MB there, age identities and talosconfigs among it).
public func makeTemporaryDirectory(_ prefix: String) throws -> URL {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    return directory
}

/// Removes what ``makeTemporaryDirectory(_:)`` made, with everything in it.
public func removeTemporaryDirectory(_ directory: URL) {
    try? FileManager.default.removeItem(at: directory)
}
