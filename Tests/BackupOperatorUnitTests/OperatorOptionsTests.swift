@testable import BackupOperator
import ControllerRuntime
import Foundation
import KubernetesClient
import ReconcilerTestSupport
import CustomResources
import Testing

@Suite("Operator options")
struct OperatorOptionsTests {
    @Test("one namespace holds all backup workers but one when the operator serves every namespace, all of them when it serves one; an explicit cap wins, within the workers")
    func workersPerNamespace() {
        func cap(namespace: String?, workers: Int, perNamespace: Int? = nil) -> Int {
            var options = TalosBackupOperator.Options(namespace: namespace, maxConcurrentBackups: workers)
            options.maxConcurrentBackupsPerNamespace = perNamespace
            return options.backupWorkersPerNamespace
        }
        #expect(cap(namespace: nil, workers: 2) == 1)
        #expect(cap(namespace: nil, workers: 4) == 3)
        #expect(cap(namespace: nil, workers: 1) == 1, "a single worker is never reserved")
        #expect(cap(namespace: "etcd-backups", workers: 2) == 2)
        #expect(cap(namespace: nil, workers: 2, perNamespace: 2) == 2)
        #expect(cap(namespace: nil, workers: 2, perNamespace: 9) == 2)
    }

    /// Which changes of a backup wake its schedule: the outcome, deletion, and a finished backup
    /// found by the informer; not its creation, its start or its status writes while running
    /// (two schedule reconciles per scheduled backup: the tick and the outcome).
    @Test("a schedule is woken by its backups' outcomes and deletions, not by their creation or progress")
    func scheduleWakeFilter() {
        func backup(_ phase: BackupPhase?, deleting: Bool = false, attempts: Int? = nil) -> TalosEtcdBackup {
            var backup = TalosEtcdBackup(metadata: ObjectMeta(name: "b", namespace: "default"), spec: backupSpec())
            if phase != nil || attempts != nil {
                backup.status = TalosEtcdBackupStatus()
                backup.status?.phase = phase
                backup.status?.attempts = attempts
            }
            if deleting { backup.metadata.deletionTimestamp = KubeTime(Date()) }
            return backup
        }
        let filter = TalosBackupOperator.backupOutcomeChanged
        #expect(!filter.passes(.added(backup(nil))), "created by the schedule, which knows")
        #expect(filter.passes(.added(backup(.succeeded))) && filter.passes(.added(backup(.failed))), "found finished")
        #expect(!filter.passes(.added(backup(.running))))
        #expect(!filter.passes(.updated(old: backup(nil), new: backup(.running))))
        #expect(!filter.passes(.updated(old: backup(.running, attempts: 1), new: backup(.running, attempts: 2))))
        #expect(!filter.passes(.updated(old: backup(.pending), new: backup(.running))))
        #expect(filter.passes(.updated(old: backup(.running), new: backup(.succeeded))))
        #expect(filter.passes(.updated(old: backup(.running), new: backup(.failed))))
        #expect(filter.passes(.updated(old: backup(.succeeded), new: backup(.running))), "an outcome undone by hand")
        #expect(filter.passes(.updated(old: backup(.running), new: backup(.running, deleting: true))))
        #expect(filter.passes(.deleted(backup(.running))))
    }
}
