import Foundation
import CustomResources
import TestSupport
import Testing

/// API server outages with the operator as a separate process: an outage must never leave the
/// operator silently dead. Leases last 3 s in these tests: the renew deadline is 2 s, and a
/// replica that lost its lease has 5 s more to exit.
///
/// The availability target is a time ("within seconds"), so this is a ...TimingTests type: the
/// test command runs it in the stage of tests with deadlines, alone, not beside the parallel
/// suites. Its bounds leave 5 s (lost lease) and 4 s (SIGTERM) beyond what the operator
/// promises, room for a machine with one of its two cores kept busy (`scripts/test-repeat
/// --load`).
@Suite("End to end: API server outages", .serialized)
struct OutageEndToEndTimingTests {
    /// Renew deadline (2 s) + the 5 s a lost replica has to stop + 5 s for a loaded machine.
    static let lostLeaseExit = Duration.seconds(12)

    func leading(_ cluster: Cluster, _ process: TestSupport.ProcessRunner.Running) async throws {
        try await cluster.waitFor("the operator leads") { process.stderrSoFar.contains("became leader") }
    }

    /// A lone backup after the outage is taken once: Succeeded, one object in the bucket.
    func backupIsTakenOnce(_ cluster: Cluster, name: String) async throws {
        try await cluster.withOperator(name: "operator-b") { _ in
            try await cluster.apply(cluster.backupManifest(name))
            try await cluster.waitFor("backup \(name) to succeed") {
                try await cluster.backup(name)?.phase == .succeeded
            }
        }
        let stored = try #require(try await cluster.backup(name)?.status?.filename)
        #expect(try await cluster.objects() == [stored], "exactly one object, no duplicate")
    }

    @Test("API server SIGKILLed: the leader exits with status 1 in time; restarted with its state lost, a new operator takes backups")
    func apiServerKilled() async throws {
        try await Cluster.withAPIServerProcess { cluster, apiServer in
            let first = try await cluster.startOperator(name: "operator-a")
            try await leading(cluster, first)
            let killed = ContinuousClock.now
            await apiServer.kill()
            let result = try await Cluster.exit(of: first, within: Self.lostLeaseExit + .seconds(5))
            #expect(ContinuousClock.now - killed < Self.lostLeaseExit)
            #expect(result.status == 1)
            #expect(result.stderr.contains("lost leadership"))

            try await apiServer.restart()
            try await cluster.installCRDsAndNamespace()
            try await cluster.apply(try cluster.manifests(schedule: "unused", cron: "0 0 1 1 *"))
            try await backupIsTakenOnce(cluster, name: "after-restart")
        }
    }

    @Test("API server SIGSTOPped (connections hang): the leader exits with status 1 in time; once resumed, backups are taken again")
    func apiServerFrozen() async throws {
        try await Cluster.withAPIServerProcess { cluster, apiServer in
            try await cluster.apply(try cluster.manifests(schedule: "unused", cron: "0 0 1 1 *"))
            let first = try await cluster.startOperator(name: "operator-a")
            try await leading(cluster, first)
            let frozen = ContinuousClock.now
            apiServer.freeze()
            let result = try await Cluster.exit(of: first, within: Self.lostLeaseExit + .seconds(5))
            #expect(ContinuousClock.now - frozen < Self.lostLeaseExit)
            #expect(result.status == 1)
            apiServer.resume()
            try await backupIsTakenOnce(cluster, name: "after-resume")
        }
    }

    @Test("SIGTERM while every API request hangs ends the process within the grace period")
    func sigtermWhileFrozen() async throws {
        try await Cluster.withAPIServerProcess { cluster, apiServer in
            // A 30 s lease: the lease is not lost during the test, so SIGTERM alone must end it.
            let process = try await cluster.startOperator(name: "operator-a", leaseDurationSeconds: 30,
                                                    arguments: ["--shutdown-grace-period-seconds", "2"])
            try await leading(cluster, process)
            apiServer.freeze()
            try await Task.sleep(for: .seconds(1))  // requests are now hanging
            let stopping = ContinuousClock.now
            process.send(SIGTERM)
            let result = try await Cluster.exit(of: process, within: .seconds(30))
            #expect(ContinuousClock.now - stopping < .seconds(6), "grace period 2 s, and 4 s for a loaded machine")
            #expect(result.stderr.contains("did not finish within") || result.status == 0)
            apiServer.resume()
        }
    }
}
