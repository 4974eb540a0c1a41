import BackupResolution
import CustomResources
import SnapshotPipeline
import Testing

/// The one mapping between a stored backup's record and its resource's status.
@Suite("StoredBackup and the status that repeats it")
struct StoredBackupStatusTests {
    @Test("a record written into a status reads back as itself; no size or hash is no record; an encoded status without the plain snapshot's hashes is refused, naming what is missing")
    func mapping() throws {
        let record = StoredBackup(node: "10.5.0.2", size: 10, sha256: String(repeating: "a", count: 64), snapshotSize: 40,
                                  snapshotSHA256: String(repeating: "b", count: 64), compression: "zstd", encryptedTo: ["0123456789abcdef"],
                                  revision: 7, totalKeys: 3)
        var status = TalosEtcdBackupStatus()
        record.apply(to: &status)
        #expect(try StoredBackup(status: status) == record)

        #expect(try StoredBackup(status: TalosEtcdBackupStatus()) == nil)

        var incomplete = status
        incomplete.snapshotSHA256 = nil
        let error = #expect(throws: IncompleteRecord.self) { _ = try StoredBackup(status: incomplete) }
        #expect(error?.description.contains("snapshotSHA256") == true)
    }
}
