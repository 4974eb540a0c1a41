import AsyncHTTPClient
import BackupOperator
import ControllerRuntime
import Foundation
import CustomResources
import TestSupport
import Testing

@Suite("End to end: metrics", .serialized)
struct MetricsEndToEndTests {
    @Test("a real Prometheus scrapes the operator during scheduled backups: every series family arrives, the alert rules evaluate, none fires; promtool accepts the scrape")
    func prometheusScrapesTheOperator() async throws {
        try await Cluster.with { cluster in
            let metricsPort = TestHelpers.freePort()
            try await cluster.withOperator(arguments: ["--metrics-bind-address", "127.0.0.1:\(metricsPort)"]) { _ in
                try await PrometheusServer.withRunning(scraping: "127.0.0.1:\(metricsPort)", in: cluster.directory) { prometheus in
                    try await cluster.apply(try cluster.manifests(schedule: "every-minute", cron: "* * * * *", retention: 2))
                    try await cluster.waitFor("two backups to succeed") {
                        try await cluster.backups().filter { $0.phase == .succeeded }.count >= 2
                    }
                    let selector = #"namespace="\#(cluster.namespace)",schedule="every-minute""#
                    try await cluster.waitFor("Prometheus to have scraped two successful backups") {
                        let samples = try await prometheus.query(#"talos_etcd_backup_backups_total{\#(selector),result="Succeeded",reason="Succeeded"}"#)
                        return (samples.first?.value ?? 0) >= 2
                    }

                    // The operator's own series, by namespace and schedule, with the job label.
                    let schedule = try await cluster.schedule("every-minute")
                    let status = try #require(schedule.status)
                    func value(_ promQL: String) async throws -> Double? { try await prometheus.query(promQL).first?.value }
                    let lastSuccess = try #require(try await value("\(BackupMetrics.lastSuccess){\(selector)}"))
                    let lastSchedule = try #require(try await value("\(BackupMetrics.lastSchedule){\(selector)}"))
                    let nextSchedule = try #require(try await value("\(BackupMetrics.nextSchedule){\(selector)}"))
                    #expect(lastSuccess <= (status.lastSuccessfulBackupTime?.date.timeIntervalSince1970 ?? 0))
                    #expect(nextSchedule - lastSchedule >= 60, "a minute apart on the operator's clock: \(lastSchedule) → \(nextSchedule)")
                    #expect(try await value("\(BackupMetrics.created){\(selector)}") == schedule.metadata.creationTimestamp?.date.timeIntervalSince1970)
                    #expect(try await value("\(BackupMetrics.paused){\(selector)}") == 0)
                    #expect((try await value("\(BackupMetrics.attemptsTotal){\(selector)}") ?? 0) >= 2)
                    let stored = try await cluster.backups().filter { $0.phase == .succeeded }.compactMap(\.status?.size)
                    #expect((try await value("\(BackupMetrics.uploadedBytesTotal){\(selector)}") ?? 0) >= Double(stored.min() ?? 1) * 2)
                    #expect((try await value("\(BackupMetrics.sizeBytes)_count{\(selector)}") ?? 0) >= 2)
                    #expect((try await value(#"\#(BackupMetrics.durationSeconds)_count{\#(selector),result="Succeeded"}"#) ?? 0) >= 2)
                    let labelled = try await prometheus.query("\(BackupMetrics.backupsTotal){\(selector)}")
                    #expect(labelled.allSatisfy { $0.labels["job"] == PrometheusServer.job && Set($0.labels.keys) == ["__name__", "job", "instance", "namespace", "schedule", "result", "reason"] },
                            "no unbounded label (no backup name): \(labelled.map(\.labels))")

                    // controller-runtime's names, and the process.
                    #expect((try await value(#"controller_runtime_reconcile_total{controller="talosetcdbackup",result="success"}"#) ?? 0) >= 2)
                    #expect(try await value(#"controller_runtime_reconcile_total{controller="talosetcdbackupschedule",result="requeue_after"}"#) != nil)
                    #expect(try await value(#"controller_runtime_reconcile_time_seconds_count{controller="talosetcdbackup"}"#) != nil)
                    #expect(try await value(#"workqueue_adds_total{name="talosetcdbackupschedule"}"#) != nil)
                    #expect(try await value(#"workqueue_queue_duration_seconds_count{name="talosetcdbackup"}"#) != nil)
                    #expect(try await value(#"leader_election_master_status{name="talos-etcd-backup"}"#) == 1)
                    #expect(try await value(#"up{job="talos-etcd-backup-metrics"}"#) == 1)
                    #expect((try await value("process_resident_memory_bytes") ?? 0) > 1_000_000)
                    #expect((try await value("process_cpu_seconds_total") ?? 0) > 0)

                    // The alert rules evaluate against these series without error, and none fires.
                    try await cluster.waitFor("every alert rule evaluated") {
                        let health = try await prometheus.ruleHealth()
                        return health.count == 5 && health.values.allSatisfy { $0 == "ok" }
                    }
                    // Pending is possible for a moment after the start (the leader gauge is 0
                    // until the Lease is won, `up` is absent before the first scrape); nothing
                    // may fire, and nothing may stay pending.
                    #expect(try await prometheus.activeAlerts().filter { $0.state == "firing" }.isEmpty)
                    try await cluster.waitFor("no alert pending or firing") {
                        try await prometheus.activeAlerts().isEmpty
                    }

                    // What Prometheus scraped is well-formed by promtool's rules.
                    let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: "http://127.0.0.1:\(metricsPort)/metrics"), timeout: .seconds(60))
                    let text = String(buffer: try await response.body.collect(upTo: 8 << 20))
                    let check = try await ProcessRunner.run("/usr/bin/promtool", ["check", "metrics"], stdin: Data(text.utf8))
                    #expect(check.status == 0, "promtool check metrics: \(check.stdout)\(check.stderr)")

                    // Verification (spec.verification, every minute of the test clock), the
                    // schedule paused so that retention keeps the same backups: all pass; then
                    // one's object goes missing from the bucket, its Verified condition says so,
                    // and TalosEtcdBackupVerificationFailed fires in Prometheus.
                    _ = try await cluster.kubectlOK(["patch", "tebs", "every-minute", "--type=merge", "-p",
                                                     #"{"spec":{"paused":true,"verification":{"schedule":"* * * * *"}}}"#])
                    try await cluster.waitFor("every retained backup to pass verification") {
                        let kept = try await cluster.backups().filter { $0.phase == .succeeded }
                        return !kept.isEmpty && kept.allSatisfy { $0.status?.verification?.result == .passed }
                    }
                    try await cluster.waitFor("Prometheus to have scraped a passed verification") {
                        (try await value(#"\#(BackupMetrics.verificationsTotal){\#(selector),result="Passed",reason="VerificationPassed"}"#) ?? 0) >= 1
                    }
                    let damaged = try #require(try await cluster.backups().first { $0.phase == .succeeded })
                    try await cluster.s3Client.deleteObject(bucket: cluster.s3.bucket, key: try #require(damaged.status?.filename))
                    try await cluster.waitFor("the missing object to be found") {
                        try await cluster.backup(damaged.metadata.name ?? "")?.status?.verification?.result == .failed
                    }
                    let condition = try #require(try await cluster.backup(damaged.metadata.name ?? "")?.condition("Verified"))
                    #expect(condition.status == .false && condition.reason == ConditionReason.objectMissing.rawValue && condition.message.contains("is missing from the store"),
                            "\(condition)")
                    #expect(try await cluster.events().contains { $0.reason == ConditionReason.objectMissing.rawValue && $0.type == "Warning" })
                    try await cluster.waitFor("TalosEtcdBackupVerificationFailed to fire") {
                        try await prometheus.activeAlerts().contains { $0.name == "TalosEtcdBackupVerificationFailed" && $0.state == "firing" }
                    }
                    #expect(try await value("\(BackupMetrics.failedVerifications){\(selector)}") ?? 0 >= 1)
                }
            }
        }
    }
}
