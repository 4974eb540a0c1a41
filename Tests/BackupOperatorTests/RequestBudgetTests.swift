import BackupOperator
import ControllerRuntime
import CustomResources
import Foundation
import KubernetesClient
import KubernetesTesting
import OperatorEndpoints
import ReconcilerTestSupport
import SnapshotPipeline
import TalosTesting
import Testing
import TestSupport

/// What one scheduled backup costs the API server, counted from the test server's request log
/// in steady state (the informers synced, the schedule ticking every four seconds on a scaled
/// clock), and how often it wakes the schedule controller, from its reconcile counter. The
/// transfer is scripted: only Kubernetes traffic is counted. (At two-second ticks a loaded
/// machine made a backup outlast a tick, whose held run is one more schedule reconcile: a
/// count of the machine's speed, not of the operator's requests.)
@Suite("API requests per scheduled backup")
struct RequestBudgetTests {
    @Test("a scheduled backup costs at most 10 API requests and 2 schedule reconciles")
    func requestsPerBackup() async throws {
        let requests = LogRecorder()
        try await KubernetesTestServer.withRunningClient(.init(logger: requests.logger("kubernetes-test-server")), clientLogger: quietLogger("client")) {
            _, client in
            for crd in CustomResourceDefinitions.all {
                _ = try await client.create(try GenericObject(raw: crd), .customResourceDefinitions)
            }
            let talosconfig = try TalosPKI().talosconfig(role: "os:etcd:backup", endpoints: ["127.0.0.1:1"])
            for (name, data) in [("my-controlplane-talosconfig", ["talosconfig": talosconfig]),
                                 ("s3-credentials", ["accessKeyID": "AKIA", "secretAccessKey": "secret"]),
                                 ("my-controlplane-state", ["secretBundle": "bundle", "state": "state"])] {
                let object: JSONValue = [
                    "apiVersion": "v1", "kind": "Secret",
                    "metadata": ["name": .string(name), "namespace": "default", "labels": ["talos.alperen.cloud/type": "state"]],
                    "data": .object(data.mapValues { .string(Data($0.utf8).base64EncodedString()) }),
                ]
                _ = try await client.create(try GenericObject(raw: object), .secrets, namespace: "default")
            }
            var spec = TalosEtcdBackupScheduleSpec(schedule: "* * * * *", backupTemplate: BackupTemplate(spec: backupSpec()))
            spec.retention = 50  // nothing is pruned while counting
            _ = try await client.create(TalosEtcdBackupSchedule(metadata: ObjectMeta(name: "budget", namespace: "default", labels: ["request-budget": "poll"]), spec: spec),
                                        TalosEtcdBackupSchedule.resourceType, namespace: "default")

            let metrics = DescribedMetricsFactory(families: ControllerRuntimeMetrics.families + BackupMetrics.families)
            let transfer = ScriptedTransfer(store: { StoredBackup(node: "node", size: 1, sha256: String(repeating: "a", count: 64)) })
            var options = TalosBackupOperator.Options(namespace: "default", clock: OperatorClock(epoch: Date(), scale: 15), transfer: transfer)
            options.metrics = metrics
            let backupOperator = TalosBackupOperator(client: client, options: options, logger: quietLogger("operator"))

            // The test's own reads carry a label selector, which the operator never sends (its
            // informers list and watch everything), so that they are not counted.
            let backupsPoll = ListOptions(labelSelector: "\(TalosEtcdBackupSchedule.backupScheduleLabel)=budget")
            func backups() async throws -> [TalosEtcdBackup] {
                try await client.listAll(TalosEtcdBackup.self, TalosEtcdBackup.resourceType, namespace: "default", options: backupsPoll).items
            }

            func scheduleReconciles() -> Double {
                var buffer: [UInt8] = []
                metrics.registry.emit(into: &buffer)
                return String(decoding: buffer, as: UTF8.self).split(separator: "\n")
                    .filter { $0.hasPrefix(ControllerRuntimeMetrics.reconcileTotal + "{") && $0.contains("controller=\"talosetcdbackupschedule\"") }
                    .compactMap { Double($0.split(separator: " ").last ?? "") }.reduce(0, +)
            }

            /// A quiet moment after more than `count` backups succeeded: every backup finished,
            /// the schedule's status has seen the newest, no request and no schedule reconcile
            /// for a second, and the same backups before and after that second. The backups,
            /// the operator's requests so far and the schedule's reconciles so far, all taken at
            /// that moment. (A reconcile is counted when it returns, after the status write this
            /// sees: read at once, a loaded machine could leave the last one out of one count and
            /// not the other, 7 reconciles for 3 backups where 6 ran.)
            func settled(after count: Int) async throws -> (backups: Int, requests: [String], reconciles: Double) {
                var result: (backups: Int, requests: [String], reconciles: Double)?
                try await eventually("backup \(count + 1) to succeed and the operator to settle") {
                    let listed = try await backups()
                    let succeeded = listed.filter { $0.status?.phase == .succeeded }
                    guard succeeded.count > count, succeeded.count == listed.count else { return false }
                    let newest = succeeded.compactMap(\.status?.completionTime).max()
                    let schedule = try await client.listAll(TalosEtcdBackupSchedule.self, TalosEtcdBackupSchedule.resourceType, namespace: "default",
                                                            options: ListOptions(labelSelector: "request-budget=poll")).items.first
                    guard schedule?.status?.lastSuccessfulBackupTime == newest else { return false }
                    let log = requests.text, reconciles = scheduleReconciles()
                    try await Task.sleep(for: .seconds(1))
                    let operatorRequests = Self.apiRequests(log)
                    guard Self.apiRequests(requests.text) == operatorRequests, scheduleReconciles() == reconciles,
                          try await backups().count == listed.count else { return false }
                    result = (listed.count, operatorRequests, reconciles)
                    return true
                }
                return try #require(result)
            }

            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await backupOperator.run() }
                let start = try await settled(after: 1)
                let end = try await settled(after: start.backups + 2)
                group.cancelAll()
                let backups = end.backups - start.backups
                let counted = Array(end.requests.dropFirst(start.requests.count))
                let perBackup = Double(counted.count) / Double(backups)
                let reconcilesPerBackup = (end.reconciles - start.reconciles) / Double(backups)
                let summary = Dictionary(grouping: counted, by: { $0 }).mapValues(\.count).sorted { $0.key < $1.key }
                    .map { "\($0.value)x \($0.key)" }.joined(separator: "\n")
                print("requests per scheduled backup: \(perBackup) over \(backups) backups; schedule reconciles per backup: \(reconcilesPerBackup)\n\(summary)")
                #expect(perBackup <= 10, "\(perBackup) requests per backup:\n\(summary)")
                #expect(reconcilesPerBackup <= 2, "\(reconcilesPerBackup) schedule reconciles per backup")
                // What was counted is what a backup costs, not an empty log or a renamed metric.
                #expect(counted.filter { $0.hasPrefix("POST /apis/talos.alperen.cloud/v1alpha1/namespaces/default/talosetcdbackups ") }.count == backups)
                #expect(counted.filter { $0.contains("/talosetcdbackups/budget-N/status 200") }.count == 2 * backups, "Running and Succeeded")
                #expect(counted.filter { $0 == "GET /api/v1/namespaces/default/secrets/my-controlplane-state 200" }.count == backups,
                        "the control plane's state Secret is read once per backup")
                #expect(reconcilesPerBackup >= 1, "the schedule reconciles at each tick at least")
            }
        }
    }

    /// The requests the test server logged, but watches (long-lived, not per backup), as
    /// `METHOD path` with object names and numbers replaced, so that kinds of request group.
    static func apiRequests(_ log: String) -> [String] {
        log.split(separator: "\n").compactMap { line -> String? in
            guard let match = line.firstMatch(of: /(GET|POST|PUT|PATCH|DELETE) (\/[^ ?]*)(\?[^ ]*)? (\d{3})/) else { return nil }
            if let query = match.3, query.contains("watch=true") || query.contains("labelSelector=") { return nil }
            let path = match.2.replacing(/budget-\d+/, with: "budget-N")
            return "\(match.1) \(path) \(match.4)"
        }
    }
}
