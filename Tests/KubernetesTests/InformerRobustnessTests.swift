import ControllerRuntime
import Foundation
import KubernetesClient
import KubernetesTesting
import TestSupport
import Testing

/// A ConfigMap whose values must be RFC 3339 timestamps: the server stores any string, so an
/// object with another value is one the API server accepts and this type rejects.
private struct TimestampMap: KubernetesObject {
    static let resourceType = ConfigMap.resourceType
    var apiVersion = "v1"
    var kind = "ConfigMap"
    var metadata: ObjectMeta
    var data: [String: KubeTime]?
}

@Suite("Timestamps with fractional seconds")
struct FractionalTimestampTests {
    @Test("decode everywhere: metav1.Time, MicroTime, conditions, metadata; any number of digits")
    func decodeEverywhere() throws {
        let decoder = JSONDecoder()
        for text in ["2026-11-27T00:00:00.25Z", "2026-11-27T00:00:00.123456789Z", "2026-11-27T01:00:00.5+01:00", "2026-11-27T00:00:00Z"] {
            let time = try decoder.decode(KubeTime.self, from: Data("\"\(text)\"".utf8))
            #expect(time.description == "2026-11-27T00:00:00Z", "\(text)")
        }
        let micro = try decoder.decode(MicroTime.self, from: Data("\"2026-11-27T00:00:00.25Z\"".utf8))
        #expect(micro.description == "2026-11-27T00:00:00.250000Z")
        let whole = try decoder.decode(MicroTime.self, from: Data("\"2026-11-27T00:00:00Z\"".utf8))
        #expect(whole.description == "2026-11-27T00:00:00.000000Z")
        let condition = try decoder.decode(Condition.self, from: Data("""
            {"type":"Ready","status":"True","reason":"Done","message":"","lastTransitionTime":"2026-11-27T00:00:00.999Z"}
            """.utf8))
        #expect(condition.lastTransitionTime.description == "2026-11-27T00:00:00Z")
        let meta = try decoder.decode(ObjectMeta.self, from: Data("""
            {"name":"x","creationTimestamp":"2026-11-27T00:00:00.1Z","deletionTimestamp":"2026-11-27T00:00:01.000001Z"}
            """.utf8))
        #expect(meta.creationTimestamp?.description == "2026-11-27T00:00:00Z")
        #expect(meta.deletionTimestamp?.description == "2026-11-27T00:00:01Z")
        #expect(throws: DecodingError.self) { try decoder.decode(KubeTime.self, from: Data("\"2026-11-27T00:00:00.Z\"".utf8)) }
    }
}

@Suite("Informer failure modes")
struct InformerRobustnessTests {
    @Test("an object the types reject is skipped and counted; the rest of the list and the watch go on")
    func undecodableObjectsAreSkipped() async throws {
        try await withServer { _, client in
            _ = try await client.create(ConfigMap("good1", data: ["t": "2026-11-27T00:00:00Z"]), ConfigMap.resourceType, namespace: "default")
            _ = try await client.create(ConfigMap("bad1", data: ["t": "yesterday"]), ConfigMap.resourceType, namespace: "default")
            _ = try await client.create(ConfigMap("good2", data: ["t": "2026-11-27T00:00:00.5Z"]), ConfigMap.resourceType, namespace: "default")
            let informer = Informer<TimestampMap>(client: client, namespace: "default", logger: quietLogger("informer"))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await informer.run() }
                await informer.waitForSync()
                #expect(Set(informer.cache.list(namespace: "default").compactMap(\.metadata.name)) == ["good1", "good2"])
                #expect(informer.undecodableObjects == 1)

                // Through the watch: a bad object, then a good one; and a good one turning bad.
                _ = try await client.create(ConfigMap("bad2", data: ["t": "soon"]), ConfigMap.resourceType, namespace: "default")
                _ = try await client.create(ConfigMap("good3", data: ["t": "2026-11-28T00:00:00Z"]), ConfigMap.resourceType, namespace: "default")
                try await eventually("good3 in the cache") { informer.cache.get(ObjectKey(namespace: "default", name: "good3")) != nil }
                #expect(informer.undecodableObjects == 2)
                _ = try await client.patch(ConfigMap.self, ConfigMap.resourceType, namespace: "default", name: "good1", mergePatch: ["data": ["t": "never"]])
                try await client.delete(ConfigMap.resourceType, namespace: "default", name: "good2")
                try await eventually("good2 deleted") { informer.cache.get(ObjectKey(namespace: "default", name: "good2")) == nil }
                #expect(informer.undecodableObjects == 3)
                // The last readable version of good1 stays cached; deleting it while unreadable removes it.
                #expect(informer.cache.get(ObjectKey(namespace: "default", name: "good1"))?.data?["t"]?.description == "2026-11-27T00:00:00Z")
                try await client.delete(ConfigMap.resourceType, namespace: "default", name: "good1")
                try await eventually("good1 deleted") { informer.cache.get(ObjectKey(namespace: "default", name: "good1")) == nil }
                group.cancelAll()
            }
        }
    }

    @Test("a watch behind a proxy that stops forwarding is abandoned after its timeout plus grace, and resumed")
    func silentWatchIsAbandoned() async throws {
        try await withServer(.init(bookmarkInterval: .seconds(60), logger: quietLogger("server"))) { server, direct in
            let proxy = try await FaultProxy(targetHost: "127.0.0.1", targetPort: server.port)
            var configuration = server.clientConfiguration()
            configuration.server = configuration.server.replacingOccurrences(of: ":\(server.port)", with: ":\(proxy.port)")
            configuration.requestTimeout = .seconds(2)  // a request on a frozen pooled connection is abandoned too
            let client = try KubernetesClient(configuration: configuration, logger: quietLogger("client"))
            let informer = Informer<ConfigMap>(client: client, namespace: "default", watchTimeoutSeconds: 2, idleGrace: .seconds(1),
                                               logger: quietLogger("informer"))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await informer.run() }
                await informer.waitForSync()
                try await eventually("a watch is open") { await server.openWatchCount == 1 }
                let watchesBefore = await server.watchesStarted
                proxy.freezeOpenConnections()
                _ = try await direct.create(ConfigMap("behind-the-proxy"), ConfigMap.resourceType, namespace: "default")
                try await eventually("the object created behind the frozen connection") {
                    informer.cache.get(ObjectKey(namespace: "default", name: "behind-the-proxy")) != nil
                }
                // The frozen watch never delivered it: it came through a new one, started after
                // the idle limit (2 s + 1 s) abandoned the silent watch.
                #expect(await server.watchesStarted > watchesBefore, "a new watch was started")
                group.cancelAll()
            }
            try await client.shutdown()
            try await proxy.shutdown()
        }
    }
}

@Suite("Kubernetes test server behaves as a real API server")
struct TestServerFidelityTests {
    @Test("removing the last finalizer of a terminating object: watchers see DELETED only, no MODIFIED first")
    func lastFinalizerRemoval() async throws {
        try await withServer { _, client in
            var object = ConfigMap("held")
            object.metadata.finalizers = ["example.com/hold"]
            let created = try await client.create(object, ConfigMap.resourceType, namespace: "default")
            try await client.delete(ConfigMap.resourceType, namespace: "default", name: "held")
            let stream = try await client.watch(ConfigMap.self, ConfigMap.resourceType, namespace: "default", options: WatchOptions(
                resourceVersion: created.metadata.resourceVersion, allowWatchBookmarks: false, timeoutSeconds: 5))
            _ = try await client.patch(ConfigMap.self, ConfigMap.resourceType, namespace: "default", name: "held",
                                       mergePatch: ["metadata": ["finalizers": .null]])
            var seen: [String] = []
            for try await event in stream {
                switch event {
                case .added: seen.append("ADDED")
                case .modified(let object): seen.append(object.metadata.finalizers == nil ? "MODIFIED without finalizers" : "MODIFIED")
                case .deleted: seen.append("DELETED")
                default: break
                }
                if seen.last == "DELETED" { break }
            }
            #expect(seen == ["MODIFIED", "DELETED"], "the delete's MODIFIED (deletionTimestamp set), then DELETED only")
            #expect(await kubernetesError { _ = try await client.get(ConfigMap.self, ConfigMap.resourceType, namespace: "default", name: "held") }?.isNotFound == true)
        }
    }
}

/// The informer's backoff counted in a real time window: a ...TimingTests type, run alone
/// (a loaded machine only makes the count smaller, which the bound allows).
@Suite("Informer backoff in real time")
struct InformerTimingTests {
    @Test("a watch that ends at once without an event backs off instead of reconnecting in a hot loop")
    func veryShortWatchesBackOff() async throws {
        try await withServer { server, client in
            // timeoutSeconds=0: the server ends every watch at once.
            let informer = Informer<ConfigMap>(client: client, namespace: "default", watchTimeoutSeconds: 0, logger: quietLogger("informer"))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await informer.run() }
                await informer.waitForSync()
                try await eventually("the informer watches again after a very short watch") { await server.watchesStarted >= 2 }
                let before = await server.watchesStarted
                try await Task.sleep(for: .seconds(4))
                let watches = await server.watchesStarted - before
                // Backoff 200 ms, 400 ms, 800 ms, 1.6 s, 3.2 s...: a handful in 4 s, not hundreds.
                #expect(watches <= 6, "\(watches) watches in 4 s")
                // And it keeps trying (on a loaded machine the window may fall between two tries).
                try await eventually("another watch after the backoff") { await server.watchesStarted > before }
                group.cancelAll()
            }
        }
    }
}
