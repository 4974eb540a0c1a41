import SnapshotPipeline
import Testing

/// Where the control plane's state goes beside a snapshot, and which backup a state key belongs to.
@Suite("The state's key beside its snapshot")
struct StoredStateTests {
    @Test("NAME.db[.zst][.age] gives NAME.state.yaml[.zst][.age], and back to NAME")
    func keys() {
        for (snapshot, state) in [("p/ns/cp/b-1.db", "p/ns/cp/b-1.state.yaml"),
                                  ("p/ns/cp/b-1.db.zst", "p/ns/cp/b-1.state.yaml.zst"),
                                  ("p/ns/cp/b-1.db.age", "p/ns/cp/b-1.state.yaml.age"),
                                  ("ns/cp/b-1.db.zst.age", "ns/cp/b-1.state.yaml.zst.age")] {
            #expect(StoredState.key(besideSnapshot: snapshot) == state)
            #expect(StoredState.backupName(ofStateKey: state) == "b-1")
        }
    }

    @Test("keys that are not a state's have no backup: snapshots, other files, an empty name")
    func notStateKeys() {
        for key in ["p/b-1.db", "p/b-1.db.zst.age", "p/b-1.state.yml", "p/.state.yaml", "p/b-1.state.yaml.gz", "", "state.yaml"] {
            #expect(StoredState.backupName(ofStateKey: key) == nil, "\(key)")
        }
    }
}
