import Foundation
import ProcFS

/// Why a test etcd could not be started or restored.
public struct EtcdInstanceError: Error, CustomStringConvertible {
    public var description: String
}

/// A real etcd (Debian's etcd-server, installed by scripts/test) on free loopback ports, for
/// tests, benchmarks and the Talos test server.
public struct EtcdInstance: Sendable {
    public let directory: URL
    /// The data directory it was started on, when given (a restored snapshot's).
    let givenData: URL?
    public let clientURL: String
    let process: ProcessRunner.Running

    /// Starts etcd on `dataDirectory` (a fresh one when nil; ``stop()`` removes either). An etcd that is not healthy
    /// within 90 s, that exits, or whose port another process answers on, is killed and started
    /// again on new ports, up to three times:
    /// under a full parallel test run one now and then stalls right after printing its first log
    /// line (seen twice in some hundred starts, never reproduced alone); the error says what each saw.
    ///
    /// Healthy means this process itself listens on its client port, not only that something
    /// there answers: `pickPort` (bind port 0, close) can hand two starts the same port before
    /// either etcd binds it, and then the second exits ("address already in use") while its
    /// health check passes against the first, whose stop later leaves the second test with a
    /// refused connection (a CI failure of ObjectLockTransferTests).
    public static func start(dataDirectory: URL? = nil, pickPort: () -> Int = freeLoopbackPort) async throws -> EtcdInstance {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/etcd") else {
            throw EtcdInstanceError(description: "etcd is missing: run scripts/test, which installs Debian's etcd-server")
        }
        var failures: [String] = []
        for _ in 0..<3 {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("etcd-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let clientPort = pickPort(), peerPort = pickPort()
            let clientURL = "http://127.0.0.1:\(clientPort)"
            let data = dataDirectory ?? directory.appendingPathComponent("data")
            let process: ProcessRunner.Running
            do {
                process = try await ProcessRunner.start("/usr/bin/etcd", [
                    "--name", "default", "--data-dir", data.path,
                    "--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
                    "--listen-peer-urls", "http://127.0.0.1:\(peerPort)", "--initial-advertise-peer-urls", "http://127.0.0.1:\(peerPort)",
                    "--initial-cluster", "default=http://127.0.0.1:\(peerPort)",
                ])
            } catch {
                try? FileManager.default.removeItem(at: directory)
                throw error
            }
            let instance = EtcdInstance(directory: directory, givenData: dataDirectory, clientURL: clientURL, process: process)
            // Far beyond the second it takes: on an overloaded machine a start took 39 s.
            let deadline = ContinuousClock.now + .seconds(90)
            var notItsOwn = 0  // healthy answers in a row from a socket not this process's
            do {
                while ContinuousClock.now < deadline, !process.hasExited {
                    if (try? await instance.etcdctl(["endpoint", "health"]))?.status == 0 {
                        // When /proc cannot tell, a healthy answer counts, as it did before the
                        // check. Not its own socket three times in a row (a table read while
                        // sockets come and go can miss a line): another process holds the port,
                        // so this etcd cannot bind it; started again on new ports.
                        guard process.listens(onLoopbackPort: clientPort) == false else { return instance }
                        notItsOwn += 1
                        if notItsOwn == 3 { break }
                    } else {
                        notItsOwn = 0
                    }
                    try await Task.sleep(for: .milliseconds(100))
                }
            } catch {
                await instance.stop()  // cancelled: neither the process nor its files outlive the caller
                throw error
            }
            let state = ProcFS.contents(of: "/proc/\(process.processIdentifier)/status")?
                .split(separator: "\n").first { $0.hasPrefix("State:") } ?? "State: gone"
            failures.append("ports \(clientPort)/\(peerPort), \(state)\(notItsOwn == 3 ? ", another process answered on its client port" : ""), log: \(process.stderrSoFar.suffix(300))")
            process.send(SIGKILL)
            _ = try? await process.finish()
            try? FileManager.default.removeItem(at: directory)
        }
        throw EtcdInstanceError(description: "etcd did not become healthy in three tries: " + failures.joined(separator: " | "))
    }

    /// Runs `body` with a fresh etcd holding keys `k0`...`k<keys-1>` (values `value-<n>`), and
    /// stops it afterwards, whether `body` returned or threw.
    public static func withRunning<T: Sendable>(keys: Int = 20, _ body: (EtcdInstance) async throws -> T) async throws -> T {
        try await start().stopping { etcd in
            for index in 0..<keys {
                let put = try await etcd.etcdctl(["put", "k\(index)", "value-\(index)"])
                guard put.status == 0 else { throw EtcdInstanceError(description: "etcdctl put k\(index) failed: \(put.stderr)") }
            }
            return try await body(etcd)
        }
    }

    /// Runs `body` with this etcd, then stops it (``stop()``) whether `body` returned or threw.
    public func stopping<T: Sendable>(after body: (EtcdInstance) async throws -> T) async throws -> T {
        do {
            let result = try await body(self)
            await stop()
            return result
        } catch {
            await stop()
            throw error
        }
    }

    public func etcdctl(_ arguments: [String]) async throws -> ProcessRunner.Result {
        try await Self.etcdctl(offline: ["--endpoints", clientURL] + arguments)
    }

    /// etcdctl (v3 API) without an endpoint, e.g. `snapshot status`.
    ///
    /// Its default bounds (5 s per command, `snapshot save` included; 2 s to connect) fail on
    /// a loaded machine, where a Talos node would not (machined streams a snapshot for as long
    /// as it takes): 120 s and 10 s here, so the test double fails only when etcd does.
    public static func etcdctl(offline arguments: [String]) async throws -> ProcessRunner.Result {
        var environment = ProcessInfo.processInfo.environment
        environment["ETCDCTL_API"] = "3"
        environment["ETCDCTL_COMMAND_TIMEOUT"] = "120s"
        environment["ETCDCTL_DIAL_TIMEOUT"] = "10s"
        return try await ProcessRunner.run("/usr/bin/etcdctl", arguments, environment: environment)
    }

    /// Restores `snapshot` with `etcdctl snapshot restore` (which checks its SHA-256 trailer
    /// unless `skipHashCheck`) into a fresh data directory and starts an etcd on it.
    public static func restoring(_ snapshot: URL, skipHashCheck: Bool = false) async throws -> EtcdInstance {
        let data = snapshot.deletingLastPathComponent().appendingPathComponent("restored-\(UUID().uuidString)")
        let restore = try await etcdctl(offline: ["snapshot", "restore", snapshot.path, "--data-dir", data.path]
                                            + (skipHashCheck ? ["--skip-hash-check"] : []))
        do {
            guard restore.status == 0 else { throw EtcdInstanceError(description: "etcdctl snapshot restore failed: \(restore.stderr)") }
            return try await start(dataDirectory: data)
        } catch {
            try? FileManager.default.removeItem(at: data)
            throw error
        }
    }

    /// Stops etcd and removes its directory and its data, also a data directory it was given:
    /// a test's etcd leaves nothing behind.
    public func stop() async {
        process.stop()
        _ = try? await process.finish()
        try? FileManager.default.removeItem(at: directory)
        if let givenData { try? FileManager.default.removeItem(at: givenData) }
    }
}

