import BackupOperator
import Foundation
import CustomResources
import TestSupport
import Testing

/// Issue 15 end to end, the operator as a process and kubectl as the user: tiered retention
/// with `deletionPolicy: Retain`, `backup-now --wait`, `kubectl delete --cascade=orphan`, and
/// `adopt` after the backups' objects were lost from the cluster.
@Suite("End to end: retention policies, backups on demand, adoption", .serialized)
struct RetentionEndToEndTests {
    @Test("retentionPolicy prunes backups but Retain keeps their objects; backup-now --wait takes one now; --cascade=orphan leaves the backups; adopt brings lost backups back from the bucket and retention applies to them")
    func retentionLifecycle() async throws {
        // Ceph RGW: `adopt` lists a prefix with a `/`, whose correct signature moto's verifier rejects.
        try await Cluster.with(s3Server: "RGW") { cluster in
            let manifests = try cluster.manifests(schedule: "tiers", cron: "* * * * *")
                .replacingOccurrences(of: "  retention: 2\n", with: "  retentionPolicy:\n    keepLast: 2\n    keepDaily: 1\n")
                .replacingOccurrences(of: "    spec:\n      talosControlPlaneRef:", with: "    spec:\n      deletionPolicy: Retain\n      talosControlPlaneRef:")
            try #require(manifests.contains("deletionPolicy: Retain") && manifests.contains("keepLast: 2"), "\(manifests)")
            try await cluster.apply(manifests)
            let cli = TestHelpers.builtProduct("talos-etcd-backup").path
            let kube = ["-n", cluster.namespace, "--kubeconfig", cluster.kubectl.kubeconfig]
            try await cluster.withOperator { _ in
                // Runs every two seconds (test clock): more than two succeed, two are kept, and
                // the pruned ones' objects stay in the bucket.
                try await cluster.waitFor("retention to have pruned with objects kept") {
                    let succeeded = try await cluster.backups().filter { $0.phase == .succeeded }.count
                    return try await cluster.objects().count >= 4 && succeeded <= 2
                }
                let status = try #require(try await cluster.schedule("tiers").status)
                #expect(status.retainedBackups?.last == 2 && status.retainedBackups?.daily == 1, "\(String(describing: status.retainedBackups))")
                #expect(try await cluster.events().contains { $0.reason == ConditionReason.objectRetained.rawValue })

                // A backup now, followed to the end.
                let now = try await ProcessRunner.run(cli, ["backup-now", "tiers", "--wait", "--timeout", "60"] + kube)
                #expect(now.status == 0, "\(now.stdout)\(now.stderr)")
                #expect(now.stdout.contains("backup tiers-manual-") && now.stdout.contains("Succeeded"), "\(now.stdout)")
                let scheduleStatus = try #require(try await cluster.schedule("tiers").status)
                #expect(scheduleStatus.lastBackupNowRequest != nil)
                let missing = try await ProcessRunner.run(cli, ["backup-now", "no-such-schedule"] + kube)
                #expect(missing.status == 1 && missing.stderr.contains("no-such-schedule not found"), "\(missing.stderr)")

                // kubectl delete --cascade=orphan: the schedule goes, its backups stay.
                _ = try await cluster.kubectlOK(["delete", "tebs", "tiers", "--cascade=orphan"])
                try await cluster.waitFor("the schedule to go") { (try? await cluster.schedule("tiers")) == nil }
                let orphaned = try await cluster.backups()
                #expect(!orphaned.isEmpty && orphaned.allSatisfy { $0.metadata.ownerReferences == nil && $0.metadata.deletionTimestamp == nil })
                try await Task.sleep(for: .seconds(3))
                #expect(try await cluster.backups().compactMap(\.metadata.name).sorted() == orphaned.compactMap(\.metadata.name).sorted(),
                        "nothing creates or prunes them any more")

                // The management cluster "loses" the backups: deleting them (Retain) keeps every object.
                let objects = try await cluster.objects()
                _ = try await cluster.kubectlOK(["delete", "teb", "--all"])
                try await cluster.waitFor("the backups to go") { try await cluster.backups().isEmpty }
                #expect(try await cluster.objects() == objects, "Retain: no object deleted")
            }

            // The schedule comes back (paused), and adopt finds its objects again.
            let objects = try await cluster.objects()
            try await cluster.apply(manifests.replacingOccurrences(of: "  schedule: \"* * * * *\"\n", with: "  schedule: \"* * * * *\"\n  paused: true\n"))
            let adopted = try await ProcessRunner.run(cli, ["adopt", "--schedule", "tiers"] + kube)
            #expect(adopted.status == 0, "\(adopted.stderr)")
            #expect(adopted.stdout.contains("\(objects.count) adopted, 0 already present, 0 skipped"), "\(adopted.stdout)")
            let unknown = try await ProcessRunner.run(cli, ["adopt", "--schedule", "no-such-schedule"] + kube)
            #expect(unknown.status == 1 && unknown.stderr.contains("no-such-schedule not found"), "\(unknown.stderr)")
            let again = try await ProcessRunner.run(cli, ["adopt", "--schedule", "tiers"] + kube)
            #expect(again.stdout.contains("0 adopted, \(objects.count) already present"), "\(again.stdout)")
            #expect(try await cluster.backups().allSatisfy { $0.phase == .succeeded && $0.condition("Ready")?.reason == ConditionReason.adopted.rawValue })
            try await cluster.withOperator { _ in
                // Retention applies to them (paused schedules prune too): two are kept.
                try await cluster.waitFor("retention over the adopted backups") { try await cluster.backups().count == 2 }
                #expect(try await cluster.objects() == objects, "still Retain: pruning adopted backups keeps their objects")
                let kept = try #require(try await cluster.backups().first?.metadata.name)
                let verified = try await ProcessRunner.run(cli, ["verify", "--backup", kept, "--namespace", cluster.namespace,
                                                                 "--kubeconfig", cluster.kubectl.kubeconfig])
                #expect(verified.status == 0, "\(verified.stderr)")
            }
        }
    }
}
