import ControllerRuntime
import Foundation
import KubernetesClient
import KubernetesTesting
import TestSupport
import Testing

/// A Secret-free core kind to drive the handle with.
struct Note: KubernetesObject, Equatable {
    static let resourceType = ResourceType(group: "", version: "v1", plural: "configmaps", kind: "ConfigMap")
    var apiVersion = "v1"
    var kind = "ConfigMap"
    var metadata: ObjectMeta
    var data: [String: String]?
}

@Suite("ObjectClient: one typed handle per kind (in memory)")
struct ObjectClientTests {
    func handle(_ api: InMemoryKubernetesAPI) -> ObjectClient<Note> {
        ObjectClient(api: api, informer: Informer<Note>(client: api, logger: quietLogger("informer")))
    }

    func created(_ client: ObjectClient<Note>, _ name: String) async throws -> Note {
        try await client.create(Note(metadata: ObjectMeta(name: name, namespace: "default"), data: ["n": "0"]))
    }

    @Test("modify retries a conflict from a fresh read, writes nothing when nothing changed, and gives up after its limit with the conflict")
    func modifyConflicts() async throws {
        let api = InMemoryKubernetesAPI()
        let client = handle(api)
        let note = try await created(client, "counter")

        // A stale copy: the first write conflicts, the retry reads afresh and applies the change to it.
        _ = try await client.modify(note.key, .object, from: note) { $0.data?["n"] = "1" }
        let written = try await client.modify(note.key, .object, from: note) { $0.data?["other"] = "x" }
        #expect(written?.data == ["n": "1", "other": "x"], "the second change was applied to the fresh read, not the stale copy")

        let unchanged = try #require(try await client.fetch(note.key))
        await api.failNextRequests(1, code: 500, method: "PUT")
        let same = try await client.modify(note.key, .object, from: unchanged) { _ in }
        #expect(same == unchanged)
        let armed = await #expect(throws: KubernetesError.self) { _ = try await client.modify(note.key, .object) { $0.data?["n"] = "9" } }
        #expect(armed?.code == 500, "the fault was still armed: the unchanged modify wrote nothing")

        var limited = client
        limited.maxConflictRetries = 3
        await api.failNextRequests(3, code: 409, method: "PUT")
        let conflict = await #expect(throws: KubernetesError.self) {
            _ = try await limited.modify(note.key, .object) { $0.data?["n"] = "2" }
        }
        #expect(conflict?.isConflict == true)
    }

    @Test("modify and delete of an object that is gone: nil and false, not an error")
    func goneObjects() async throws {
        let api = InMemoryKubernetesAPI()
        let client = handle(api)
        let key = ObjectKey(namespace: "default", name: "absent")
        #expect(try await client.fetch(key) == nil)
        #expect(try await client.modify(key, .object) { $0.data = [:] } == nil)
        #expect(try await client.delete(key) == false)
        let note = try await created(client, "present")
        #expect(try await client.delete(note.key) == true)
        #expect(try await client.fetch(note.key) == nil)
    }

    @Test("a finalizer is added once, never to an object being deleted, and removing the last one lets the object go")
    func finalizers() async throws {
        let api = InMemoryKubernetesAPI()
        let client = handle(api)
        let note = try await created(client, "guarded")
        let added = try #require(try await client.addFinalizer("example.com/keep", to: note))
        #expect(added.metadata.finalizers == ["example.com/keep"])
        #expect(try await client.addFinalizer("example.com/keep", to: added)?.metadata.finalizers == ["example.com/keep"])

        #expect(try await client.delete(note.key))
        let deleting = try #require(try await client.fetch(note.key), "held by its finalizer")
        #expect(deleting.metadata.deletionTimestamp != nil)
        #expect(try await client.addFinalizer("example.com/other", to: deleting)?.metadata.finalizers == ["example.com/keep"])
        try await client.removeFinalizer("example.com/keep", from: deleting)
        #expect(try await client.fetch(note.key) == nil)
    }
}
