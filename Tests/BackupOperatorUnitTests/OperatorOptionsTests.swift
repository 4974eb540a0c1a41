@testable import BackupOperator
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
}
