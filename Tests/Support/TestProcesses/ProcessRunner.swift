import Waiting
import Foundation
import ProcFS
import Subprocess
import SystemPackage

/// Child processes for tests, benchmarks and test servers, through swift-subprocess (no
/// thread of Swift's cooperative pool is blocked while one runs). A started process writes its
/// output to temporary files, so a large answer cannot fill a pipe and hang it, and what it
/// has written so far can be read while it runs.
public enum ProcessRunner {
    public struct Result: Sendable {
        /// The exit status, or the signal's number when a signal ended the process (as
        /// Foundation's `Process` reports it).
        public var status: Int32
        public var stdout: String
        public var stderr: String
        public var stdoutData: Data
    }

    /// A started process: read its output so far, signal it, or wait for it. The swift-subprocess
    /// run lives in a task this handle owns; ``finish()`` awaits it.
    public final class Running: Sendable {
        private let run: Task<TerminationStatus, any Error>
        public let processIdentifier: Int32
        let out: URL
        let err: URL

        init(run: Task<TerminationStatus, any Error>, processIdentifier: Int32, out: URL, err: URL) {
            self.run = run
            self.processIdentifier = processIdentifier
            self.out = out
            self.err = err
        }

        public var stdoutSoFar: String { (try? String(contentsOf: out, encoding: .utf8)) ?? "" }
        public var stderrSoFar: String { (try? String(contentsOf: err, encoding: .utf8)) ?? "" }

        /// SIGTERM: a clean stop.
        public func stop() { send(SIGTERM) }

        /// Sends `signal` (SIGKILL to simulate a crash, SIGSTOP to freeze it, SIGTERM to stop).
        /// A process already reaped is left alone (its number may belong to another by now).
        public func send(_ signal: Int32) {
            if !hasExited { kill(processIdentifier, signal) }
        }

        /// Whether the process has ended and been reaped.
        public var hasExited: Bool { kill(processIdentifier, 0) != 0 }

        /// Whether this process holds a TCP socket listening on 127.0.0.1:`port`, so a test can
        /// tell its own server from another process that took the same port: its descriptors'
        /// socket inodes (`/proc/<pid>/fd`) against the LISTEN sockets in the `tcp` and `tcp6`
        /// tables of this network namespace, which children share. False for a process that
        /// has ended; nil where /proc cannot tell.
        public func listens(onLoopbackPort port: Int) -> Bool? {
            let files = FileManager.default
            let descriptors = "/proc/\(processIdentifier)/fd"
            let entries: [String]
            do {
                entries = try files.contentsOfDirectory(atPath: descriptors)
            } catch {
                return hasExited ? false : nil
            }
            let inodes = Set(entries.compactMap { entry -> Substring? in
                guard let target = try? files.destinationOfSymbolicLink(atPath: "\(descriptors)/\(entry)"),
                      target.hasPrefix("socket:["), target.hasSuffix("]") else { return nil }
                return Substring(target.dropFirst("socket:[".count).dropLast())
            })
            let tables = ["tcp", "tcp6"].compactMap { ProcFS.contents(of: "/proc/self/net/\($0)") }
            guard !tables.isEmpty else { return nil }
            return !inodes.isDisjoint(with: ProcessRunner.loopbackListeners(onPort: port, tables: tables))
        }

        /// Waits for the process to end. A waiter that gives up (cancelled, e.g. by a
        /// deadline) kills the process, so that neither it nor the wait outlives the caller.
        public func finish() async throws -> Result {
            let termination = try await withTaskCancellationHandler {
                try await run.value
            } onCancel: {
                send(SIGKILL)
            }
            let status: Int32 = switch termination {
            case .exited(let code): code
            case .signaled(let signal): signal
            }
            let data = try Data(contentsOf: out)
            let result = Result(status: status, stdout: String(decoding: data, as: UTF8.self),
                                stderr: try String(contentsOf: err, encoding: .utf8), stdoutData: data)
            // The output is in the result now: its files go (they filled this machine's /tmp).
            try? FileManager.default.removeItem(at: out.deletingLastPathComponent())
            return result
        }
    }

    /// Why a process could not be started.
    public struct StartFailed: Error, CustomStringConvertible {
        public var description: String
    }

    /// Starts `executable` (a path, or a name looked up on PATH) and returns once it runs.
    /// `environment`, when given, is its whole environment.
    public static func start(_ executable: String, _ arguments: [String], environment: [String: String]? = nil, stdin: Data? = nil) async throws -> Running {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("process-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let out = directory.appendingPathComponent("out"), err = directory.appendingPathComponent("err")
        let outFile = try FileDescriptor.open(FilePath(out.path), .writeOnly, options: [.create, .truncate], permissions: .ownerReadWrite)
        let errFile = try FileDescriptor.open(FilePath(err.path), .writeOnly, options: [.create, .truncate], permissions: .ownerReadWrite)
        var inFile: FileDescriptor?
        if let stdin {
            let input = directory.appendingPathComponent("in")
            try stdin.write(to: input)
            inFile = try FileDescriptor.open(FilePath(input.path), .readOnly)
        }
        let program: Executable = executable.contains("/") ? .path(FilePath(executable)) : .name(executable)
        let processEnvironment: Environment = environment.map { variables in
            .custom(Dictionary(uniqueKeysWithValues: variables.map { (Environment.Key(stringLiteral: $0.key), $0.value) }))
        } ?? .inherit
        let (spawned, announce) = AsyncStream<Int32>.makeStream()
        let run = Task { [inFile] in
            defer { announce.finish() }
            let output = FileDescriptorOutput.fileDescriptor(outFile, closeAfterSpawningProcess: true)
            let error = FileDescriptorOutput.fileDescriptor(errFile, closeAfterSpawningProcess: true)
            let announcePID: (ProcessIdentifier) -> Void = { announce.yield($0.value) }
            if let inFile {
                return try await Subprocess.run(
                    program, arguments: Arguments(arguments), environment: processEnvironment,
                    input: .fileDescriptor(inFile, closeAfterSpawningProcess: true), output: output, error: error
                ) { execution in announcePID(execution.processIdentifier) }.terminationStatus
            }
            return try await Subprocess.run(
                program, arguments: Arguments(arguments), environment: processEnvironment, input: .none, output: output, error: error
            ) { execution in announcePID(execution.processIdentifier) }.terminationStatus
        }
        var pids = spawned.makeAsyncIterator()
        guard let pid = await pids.next() else {
            do {
                _ = try await run.value
            } catch {
                throw StartFailed(description: "\(executable) could not be started: \(error)")
            }
            throw StartFailed(description: "\(executable) could not be started")
        }
        return Running(run: run, processIdentifier: pid, out: out, err: err)
    }

    /// Runs to completion, within `limit`: a process that hangs is killed and the run throws
    /// `DeadlineExceeded` naming it.
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil, stdin: Data? = nil,
                           within limit: Duration = .seconds(300)) async throws -> Result {
        let process = try await start(executable, arguments, environment: environment, stdin: stdin)
        return try await withDeadline(limit, "\(executable) \(arguments.joined(separator: " "))") { try await process.finish() }
    }
}

extension ProcessRunner {
    /// The socket inodes listening on 127.0.0.1:`port` in the text of `/proc/net/tcp` and
    /// `/proc/net/tcp6` tables (an IPv4-mapped address in `tcp6` included). The kernel prints
    /// each 32-bit word of an address as a number in host byte order, the port in hex.
    public static func loopbackListeners(onPort port: Int, tables: [String]) -> Set<Substring> {
        let loopback = String(format: "%08X", inet_addr("127.0.0.1"))
        let hex = String(port, radix: 16, uppercase: true)
        let portHex = ":" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
        let mapped = "0000000000000000" + String(format: "%08X", UInt32(0xFFFF).bigEndian) + loopback
        let locals: Set<Substring> = [Substring(loopback + portHex), Substring(mapped + portHex)]
        var inodes = Set<Substring>()
        for table in tables {
            // Each line after the header: sl local_address rem_address st ... uid timeout inode; state 0A is LISTEN.
            for line in table.split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                if fields.count > 9, locals.contains(fields[1]), fields[3] == "0A" { inodes.insert(fields[9]) }
            }
        }
        return inodes
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on right now.
public func freeLoopbackPort() -> Int {
    let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(socket) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) } }
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) } }
    return Int(UInt16(bigEndian: address.sin_port))
}
