import Foundation
import Waiting
import TestSupport
import Testing

/// Runs the built `talos-etcd-backup` executable, as a user would.
struct CLI {
    static var executable: URL { TestHelpers.builtProduct("talos-etcd-backup") }

    static func run(_ arguments: String...) async throws -> ProcessRunner.Result {
        try await ProcessRunner.run(executable.path, arguments)
    }

    static func run(with arguments: [String], environment: [String: String]? = nil) async throws -> ProcessRunner.Result {
        try await ProcessRunner.run(executable.path, arguments, environment: environment)
    }
}


@Suite("talos-etcd-backup next-runs")
struct NextRunsCLITests {
    @Test("prints the next runs in UTC, one per line")
    func prints() async throws {
        let result = try await CLI.run("next-runs", "--time-zone", "America/New_York", "--from", "2026-03-07T00:00:00Z", "--count", "3", "30 2 * * *")
        #expect(result.status == 0)
        #expect(result.stdout == "2026-03-07T07:30:00Z\n2026-03-08T07:00:00Z\n2026-03-09T06:30:00Z\n")
        #expect(result.stderr == "")
    }

    @Test("five runs by default, strictly after --from, which takes an offset")
    func defaults() async throws {
        let result = try await CLI.run("next-runs", "--from", "2026-11-26T06:00:00+01:00", "0 * * * *")
        #expect(result.stdout.split(separator: "\n") == [
            "2026-11-26T06:00:00Z", "2026-11-26T07:00:00Z", "2026-11-26T08:00:00Z", "2026-11-26T09:00:00Z", "2026-11-26T10:00:00Z",
        ])
    }

    @Test("starts from now without --from")
    func fromNow() async throws {
        let before = Date()
        let result = try await CLI.run("next-runs", "--count", "1", "* * * * *")
        let after = Date()
        #expect(result.status == 0)
        let line = result.stdout.trimmingCharacters(in: .newlines)
        let next = try #require(ISO8601DateFormatter().date(from: line))
        // The command read its clock somewhere between `before` and `after` (a loaded machine
        // may take seconds to start it): the next minute after that moment.
        #expect(next > before.addingTimeInterval(-1))
        #expect(next <= after.addingTimeInterval(60), "\(next) is more than a minute after \(after)")
    }

    @Test("an invalid expression or zone: message on stderr, exit 1", arguments: [
        (["61 * * * *"], "error: minute field \"61\": 61 is out of range 0-59\n"),
        (["--time-zone", "Mars/Base", "* * * * *"], "error: unknown time zone \"Mars/Base\"; expected an IANA name such as UTC or Europe/Berlin\n"),
        (["--time-zone", "UTC", "CRON_TZ=UTC * * * * *"], "error: schedule carries time zone prefix \"UTC\" and timeZone is \"UTC\"; set only one of them\n"),
        (["* * *"], "error: schedule \"* * *\" has 3 fields; expected five: minute hour day-of-month month day-of-week\n"),
    ])
    func invalid(arguments: [String], message: String) async throws {
        let result = try await CLI.run(with: ["next-runs"] + arguments)
        #expect(result.status == 1)
        #expect(result.stdout == "")
        #expect(result.stderr == message)
    }

    @Test("no next run: said on stderr, exit 2")
    func never() async throws {
        let result = try await CLI.run("next-runs", "0 0 30 2 *")
        #expect(result.status == 2)
        #expect(result.stdout == "")
        #expect(result.stderr == "error: \"0 0 30 2 *\" never runs: no date matches it\n")
    }

    @Test("bad options are refused with a message")
    func badOptions() async throws {
        let count = try await CLI.run("next-runs", "--count", "0", "* * * * *")
        #expect(count.status != 0)
        #expect(count.stderr.contains("--count must be at least 1, not 0"))
        let from = try await CLI.run("next-runs", "--from", "tomorrow", "* * * * *")
        #expect(from.status != 0)
        #expect(from.stderr.contains("--from \"tomorrow\" is not an RFC 3339 time"))
    }
}

@Suite("talos-etcd-backup crds")
struct CRDsCLITests {
    @Test("prints both CRDs, identical to deploy/crds/")
    func prints() async throws {
        let result = try await CLI.run("crds")
        #expect(result.status == 0)
        let files = ["talos.alperen.cloud_talosetcdbackupschedules.yaml", "talos.alperen.cloud_talosetcdbackups.yaml"]
        let committed = try files.map {
            try String(contentsOf: repositoryRoot.appendingPathComponent("deploy/crds/\($0)"), encoding: .utf8)
        }
        #expect(result.stdout == committed.joined(separator: "---\n"))
    }

    @Test("--output-dir writes one file per CRD")
    func outputDirectory() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("crds-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let result = try await CLI.run("crds", "--output-dir", directory.path)
        #expect(result.status == 0)
        let written = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        #expect(written == ["talos.alperen.cloud_talosetcdbackups.yaml", "talos.alperen.cloud_talosetcdbackupschedules.yaml"])
        let committed = try String(contentsOf: repositoryRoot.appendingPathComponent("deploy/crds/talos.alperen.cloud_talosetcdbackups.yaml"), encoding: .utf8)
        #expect(try String(contentsOf: directory.appendingPathComponent("talos.alperen.cloud_talosetcdbackups.yaml"), encoding: .utf8) == committed)
    }
}


@Suite("talos-etcd-backup run (options; the operator itself is in EndToEndTests)")
struct RunCLITests {
    @Test("run sets glibc's malloc for the operator before it starts, and logs it; glibc's own variable wins for its setting")
    func mallocSettings() async throws {
        let missing = FileManager.default.temporaryDirectory.appendingPathComponent("no-such-kubeconfig-\(UUID().uuidString)").path
        let result = try await CLI.run("run", "--kubeconfig", missing)
        #expect(result.stderr.contains(#"refused=[] set=["MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_"]"#), "\(result.stderr)")
        let tuned = try await CLI.run(with: ["run", "--kubeconfig", missing],
                                      environment: ProcessInfo.processInfo.environment.merging(["MALLOC_ARENA_MAX": "4"]) { $1 })
        #expect(tuned.stderr.contains(#"refused=[] set=["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_"]"#), "\(tuned.stderr)")
    }

    @Test("--log-format json writes one JSON object per line; a bad kubeconfig is a clear error with exit status 1")
    func jsonLogsAndBadConfiguration() async throws {
        let missing = FileManager.default.temporaryDirectory.appendingPathComponent("no-such-kubeconfig-\(UUID().uuidString)").path
        let result = try await CLI.run("run", "--kubeconfig", missing, "--log-format", "json")
        #expect(result.status == 1)
        let lines = result.stderr.split(separator: "\n")
        #expect(!lines.isEmpty)
        for line in lines {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not JSON: \(line)")
            #expect(object["level"] != nil && object["time"] != nil && object["message"] != nil)
        }
        #expect(result.stderr.contains("cannot load the Kubernetes configuration"))
        #expect(result.stderr.contains(missing))
    }

    @Test("invalid options are rejected before anything starts")
    func invalidOptions() async throws {
        let zero = try await CLI.run("run", "--max-concurrent-backups", "0")
        #expect(zero.status != 0)
        #expect(zero.stderr.contains("--max-concurrent-backups must be at least 1"))
        let format = try await CLI.run("run", "--log-format", "xml")
        #expect(format.status != 0)
        #expect(format.stderr.contains("xml"))
        let election = try await CLI.run("run", "--leader-elect", "maybe")
        #expect(election.status != 0)
    }
}

@Suite("deploy/default's Deployment")
struct DeploymentArgumentsTests {
    @Test("the container's args parse: the operator gets as far as loading its configuration")
    func argumentsParse() async throws {
        let text = try String(contentsOf: repositoryRoot.appendingPathComponent("deploy/default/deployment.yaml"), encoding: .utf8)
        // The args list: the `- ...` lines after `args:`, up to the next key.
        let lines = text.split(separator: "\n")
        let start = try #require(lines.firstIndex { $0.trimmingCharacters(in: .whitespaces) == "args:" })
        let arguments = lines[(start + 1)...].prefix { $0.trimmingCharacters(in: .whitespaces).hasPrefix("- ") }
            .map { String($0.trimmingCharacters(in: .whitespaces).dropFirst(2)) }
        #expect(arguments.first == "run" && arguments.count >= 4, "\(arguments)")
        let result = try await CLI.run(with: arguments + ["--kubeconfig", "/nonexistent/kubeconfig"])
        #expect(result.status == 1, "exit 1 from the configuration, not 64 from the arguments: \(result.stderr)")
        #expect(result.stderr.contains("/nonexistent/kubeconfig"), "\(result.stderr)")
    }
}

@Suite("Running child processes")
struct ProcessRunnerTests {
    @Test("a process that hangs past its bound is killed and the run throws DeadlineExceeded naming it")
    func boundedRun() async throws {
        // The process would run for an hour; the test's own bound (five minutes) is far beyond
        // the 1 s one, so only a wait that was not cut at the bound reaches it, however slow
        // this machine is.
        let error = try await withDeadline(.seconds(300), "the bounded run of /bin/sleep 3600") {
            await TestHelpers.caught(DeadlineExceeded.self) {
                _ = try await ProcessRunner.run("/bin/sleep", ["3600"], within: .seconds(1))
            }
        }
        #expect(error?.operation == "/bin/sleep 3600", "the error names the process")
        #expect(error?.limit == .seconds(1))

        let process = try await ProcessRunner.start("/bin/sleep", ["3600"])
        let cut = try await withDeadline(.seconds(300), "waiting for the killed /bin/sleep") {
            await TestHelpers.caught(DeadlineExceeded.self) {
                _ = try await withDeadline(.seconds(1), "sleep") { try await process.finish() }
            }
        }
        #expect(cut?.operation == "sleep")
        #expect(kill(process.processIdentifier, 0) != 0, "the process was killed, not left running")
    }
}

@Suite("talos-etcd-backup --help")
struct HelpTests {
    @Test("every subcommand's help renders: an overview, a usage line, and no stray line-continuation backslashes")
    func helpTexts() async throws {
        for command in ["run", "snapshot", "backup-now", "adopt", "restore", "verify", "recover", "next-runs", "crds"] {
            let help = try await CLI.run(command, "--help")
            #expect(help.status == 0, "\(command)")
            #expect(help.stdout.contains("OVERVIEW:") && help.stdout.contains("USAGE: talos-etcd-backup \(command)"), "\(command): \(help.stdout)")
            #expect(!help.stdout.contains("\\\n") && !help.stdout.contains(" \\ "), "\(command): \(help.stdout)")
        }
    }
}
