import Age
import Crypto
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

/// A stored state read back (``StateRestore``): the recorded hash before anything else, the
/// encoding undone, and bounds on what is held.
@Suite("The state read back")
struct StateRestoreTests {
    let manifest = Array("apiVersion: v1\nkind: Secret\n".utf8)

    func stored(_ plan: SnapshotEncodingPlan, _ plain: [UInt8]) throws -> [UInt8] {
        let encoder = try SnapshotEncoder(compressionLevel: plan.compressionLevel, recipients: plan.recipients)
        return try encoder.encode(plain) + encoder.finish()
    }

    static func hex(_ bytes: [UInt8]) -> String { SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined() }

    @Test("plain, zstd, age, zstd+age: the manifest back, its stored size and SHA-256; the recorded SHA-256 in either case")
    func everyEncoding() throws {
        let identity = AgeIdentity()
        for plan in [SnapshotEncodingPlan.plain, SnapshotEncodingPlan(compressionLevel: 3),
                     SnapshotEncodingPlan(recipients: [identity.recipient]), SnapshotEncodingPlan(compressionLevel: 19, recipients: [identity.recipient])] {
            let bytes = try stored(plan, manifest)
            let restored = try StateRestore.decode(bytes, encoding: plan.encoding, identities: [identity],
                                                   recordedSHA256: Self.hex(bytes).uppercased(), name: "s")
            #expect(restored == RestoredState(manifest: manifest, storedSize: Int64(bytes.count), storedSHA256: Self.hex(bytes)))
        }
    }

    @Test("another object than recorded is refused before it is decrypted; a wrong identity, a cut object, a zstd bomb, an oversized object: errors")
    func refusals() throws {
        let identity = AgeIdentity()
        let plan = SnapshotEncodingPlan(compressionLevel: 3, recipients: [identity.recipient])
        let bytes = try stored(plan, manifest)
        let swapped = #expect(throws: RestoreMismatch.self) {
            _ = try StateRestore.decode(bytes, encoding: plan.encoding, identities: [], recordedSHA256: String(repeating: "0", count: 64), name: "s")
        }
        #expect(swapped?.what.contains("state object SHA-256") == true, "compared before the missing identity matters")
        #expect(throws: (any Error).self) { _ = try StateRestore.decode(bytes, encoding: plan.encoding, identities: [AgeIdentity()], recordedSHA256: nil, name: "s") }
        #expect(throws: (any Error).self) {
            _ = try StateRestore.decode(Array(bytes.dropLast(5)), encoding: plan.encoding, identities: [identity], recordedSHA256: nil, name: "s")
        }
        // 64 MiB of zeros compress to a few KiB: decompression stops at the bound.
        let bomb = try stored(SnapshotEncodingPlan(compressionLevel: 19), [UInt8](repeating: 0, count: 64 << 20))
        #expect(bomb.count < 1 << 20)
        let exploded = #expect(throws: StateTooLarge.self) {
            _ = try StateRestore.decode(bomb, encoding: SnapshotEncoding(compressed: true, encrypted: false), identities: [], recordedSHA256: nil, name: "s")
        }
        #expect(exploded?.what == "decoded manifest")
        let oversized = #expect(throws: StateTooLarge.self) {
            _ = try StateRestore.decode([UInt8](repeating: 0x61, count: StateRestore.maximumSize + 1), encoding: SnapshotEncoding(compressed: false, encrypted: false),
                                        identities: [], recordedSHA256: nil, name: "s")
        }
        #expect(oversized?.what == "stored object")
    }
}
