import ControllerRuntime
import KubernetesClient
import KubernetesTesting
import Synchronization
import TestSupport
import Testing

@Suite("Informer: what it caches (in memory)")
struct InformerCacheTests {
    static let managedFields: [JSONValue] = [
        ["manager": "kubectl", "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": ["f:data": ["f:n": [:]]]],
    ]

    @Test("managedFields are dropped from what is cached and delivered, listed or watched; a write of the cached copy keeps the server's")
    func managedFieldsAreNotCached() async throws {
        let api = InMemoryKubernetesAPI()
        var listed = Note(metadata: ObjectMeta(name: "listed", namespace: "default"), data: ["n": "0"])
        listed.metadata.managedFields = Self.managedFields
        _ = try await api.create(listed, Note.resourceType, namespace: "default")
        let stored = try await api.get(Note.self, Note.resourceType, namespace: "default", name: "listed")
        #expect(stored.metadata.managedFields == Self.managedFields, "the store keeps what it was given")

        let informer = Informer<Note>(client: api, logger: quietLogger("informer"))
        let delivered = Mutex<[Note]>([])
        _ = informer.addHandler { event in delivered.withLock { $0.append(event.object) } }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await informer.run() }
            await informer.waitForSync()
            let cached = try #require(informer.cache.get(listed.key))
            #expect(cached.metadata.managedFields == nil)
            #expect(cached.data == ["n": "0"])

            var watched = Note(metadata: ObjectMeta(name: "watched", namespace: "default"), data: ["n": "1"])
            watched.metadata.managedFields = Self.managedFields
            _ = try await api.create(watched, Note.resourceType, namespace: "default")
            try await eventually("the watched object cached") { informer.cache.get(watched.key) != nil }
            #expect(informer.cache.get(watched.key)?.metadata.managedFields == nil)

            // The cached copy written back (as ObjectClient.modify does): the server keeps its managedFields.
            let client = ObjectClient(api: api, informer: informer)
            let written = try #require(try await client.modify(listed.key, .object, from: cached) { $0.data?["n"] = "2" })
            #expect(written.data == ["n": "2"])
            #expect(written.metadata.managedFields == Self.managedFields, "an update without managedFields keeps the object's")
            try await eventually("the write seen") { informer.cache.get(listed.key)?.data == ["n": "2"] }
            #expect(informer.cache.get(listed.key)?.metadata.managedFields == nil)

            // A deletion is delivered as the object was, without them too.
            try await api.delete(Note.resourceType, namespace: "default", name: "watched", options: DeleteOptions())
            try await eventually("the deletion seen") { informer.cache.get(watched.key) == nil }
            group.cancelAll()
        }
        let all = delivered.withLock { $0 }
        #expect(all.map(\.metadata.name) == ["listed", "watched", "listed", "watched"], "added, added, updated, deleted")
        #expect(all.allSatisfy { $0.metadata.managedFields == nil }, "handlers see the objects as cached")
    }
}
