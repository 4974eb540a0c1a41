import ControllerRuntime
import ServiceLifecycle
import Foundation
import KubernetesClient
import KubernetesTesting
import Synchronization
import TestSupport
import Testing

@Suite("Informer")
struct InformerTests {
    @Test("syncs, follows changes, and converges after dropped watches and 410 Gone without losing deletes")
    func convergesThroughFaults() async throws {
        try await withServer(.init(bookmarkInterval: .milliseconds(200), watchHistory: 50, logger: quietLogger("server"))) { server, client in
            for index in 0..<5 { _ = try await client.create(ConfigMap("c\(index)"), ConfigMap.resourceType, namespace: "default") }
            let informer = Informer<ConfigMap>(client: client, namespace: "default", logger: quietLogger("informer"))
            let deleted = Locked<Set<String>>([])
            informer.addHandler { event in
                if case .deleted(let object) = event { deleted.withLock { _ = $0.insert(object.metadata.name!) } }
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await informer.run() }
                await informer.waitForSync()
                #expect(informer.hasSynced)
                #expect(informer.cache.count == 5)

                _ = try await client.create(ConfigMap("c5"), ConfigMap.resourceType, namespace: "default")
                try await eventually("c5 in the cache") { informer.cache.get(ObjectKey(namespace: "default", name: "c5")) != nil }

                // The watch breaks mid-stream; changes made meanwhile still arrive.
                await server.dropWatches()
                try await client.delete(ConfigMap.resourceType, namespace: "default", name: "c0")
                _ = try await client.patch(ConfigMap.self, ConfigMap.resourceType, namespace: "default", name: "c1", mergePatch: ["data": ["v": "1"]])
                try await eventually("c0 gone and c1 updated") {
                    informer.cache.get(ObjectKey(namespace: "default", name: "c0")) == nil
                        && informer.cache.get(ObjectKey(namespace: "default", name: "c1"))?.data == ["v": "1"]
                }

                // History expires while disconnected: a relist must still report the delete.
                await server.expireResourceVersions()
                try await client.delete(ConfigMap.resourceType, namespace: "default", name: "c2")
                for index in 0..<60 {  // more than the server keeps
                    _ = try await client.create(ConfigMap("bulk\(index)"), ConfigMap.resourceType, namespace: "default")
                }
                await server.dropWatches()
                try await eventually("the cache matches the server") {
                    let onServer = try await client.list(ConfigMap.self, ConfigMap.resourceType, namespace: "default").items.compactMap(\.metadata.name)
                    return Set(informer.cache.list(namespace: "default").compactMap(\.metadata.name)) == Set(onServer)
                }
                #expect(deleted.withLock { $0 } == ["c0", "c2"])
                group.cancelAll()
            }
        }
    }

    @Test("the cache indexes by namespace and by controller owner")
    func indexes() async throws {
        try await withServer { _, client in
            _ = try await client.create(GenericObject(raw: ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": "other"]]), .namespaces)
            let owner = try await client.create(ConfigMap("owner"), ConfigMap.resourceType, namespace: "default")
            var owned = ConfigMap("owned")
            owned.metadata.ownerReferences = [OwnerReference(apiVersion: "v1", kind: "ConfigMap", name: "owner", uid: owner.metadata.uid!, controller: true)]
            _ = try await client.create(owned, ConfigMap.resourceType, namespace: "default")
            _ = try await client.create(ConfigMap("elsewhere", namespace: "other"), ConfigMap.resourceType, namespace: "other")
            let informer = Informer<ConfigMap>(client: client, logger: quietLogger("informer"))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await informer.run() }
                await informer.waitForSync()
                #expect(informer.cache.list(namespace: "other").map(\.metadata.name) == ["elsewhere"])
                #expect(informer.cache.list(namespace: "default").count == 2)
                #expect(informer.cache.controlled(by: owner.metadata.uid!).map(\.metadata.name) == ["owned"])
                group.cancelAll()
            }
        }
    }
}

/// Records which keys were reconciled and checks no key is reconciled twice at once.
final class RecordingReconciler: Reconciler {
    let log = Locked<[String]>([])
    let active = Locked<Set<ObjectKey>>([])
    let overlaps = Locked(0)
    let result: ReconcileResult
    let delay: Duration

    init(result: ReconcileResult = .done, delay: Duration = .zero) {
        self.result = result
        self.delay = delay
    }

    func reconcile(_ key: ObjectKey) async throws -> ReconcileResult {
        let clash = active.withLock { !$0.insert(key).inserted }
        if clash { overlaps.withLock { $0 += 1 } }
        log.withLock { $0.append(key.description) }
        if delay > .zero { try? await Task.sleep(for: delay) }
        active.withLock { _ = $0.remove(key) }
        return result
    }
}

@Suite("Controller")
struct ControllerTimingTests {
    @Test("reconciles its kind, maps owned objects to their controller owner, and requeues after a delay")
    func mapsOwnedObjects() async throws {
        try await withServer { _, client in
            let reconciler = RecordingReconciler(result: .requeue(after: .milliseconds(200)))
            let primary = Informer<ConfigMap>(client: client, namespace: "default", labelSelector: "role=primary", logger: quietLogger("i"))
            let secondary = Informer<ConfigMap>(client: client, namespace: "default", labelSelector: "role=secondary", logger: quietLogger("i"))
            let controller = Controller(name: "test", primary: primary, reconciler: reconciler, workers: 2, logger: quietLogger("c"))
                .owning(secondary)
            let owner = try await client.create(ConfigMap("p", labels: ["role": "primary"]), ConfigMap.resourceType, namespace: "default")
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await primary.run() }
                group.addTask { try await secondary.run() }
                group.addTask { try await controller.run() }
                try await eventually("primary reconciled") { reconciler.log.withLock { $0.contains("default/p") } }
                let before = reconciler.log.withLock { $0.count }
                var child = ConfigMap("s", labels: ["role": "secondary"])
                child.metadata.ownerReferences = [OwnerReference(apiVersion: "v1", kind: "ConfigMap", name: "p", uid: owner.metadata.uid!, controller: true)]
                _ = try await client.create(child, ConfigMap.resourceType, namespace: "default")
                try await eventually("owner reconciled again") { reconciler.log.withLock { $0.count } > before }
                #expect(!reconciler.log.withLock { $0.contains("default/s") })
                // Requeue-after keeps it coming back about every 200 ms: 7 times in 1.5 s; at
                // least 2 leaves room for a machine with one core kept busy.
                let count = reconciler.log.withLock { $0.count }
                try await Task.sleep(for: .milliseconds(1_500))
                #expect(reconciler.log.withLock { $0.count } >= count + 2)
                #expect(reconciler.overlaps.withLock { $0 } == 0)
                group.cancelAll()
            }
        }
    }
}

@Suite("Leader election")
struct LeaderElectionTimingTests {
    @Test("two instances: one leads, the other takes over when it stops, no key reconciled by both at once")
    func handover() async throws {
        try await withServer { _, client in
            for index in 0..<3 { _ = try await client.create(ConfigMap("k\(index)"), ConfigMap.resourceType, namespace: "default") }
            let leaders = Locked<[String]>([])
            let reconciles = Locked<[(String, ContinuousClock.Instant)]>([])
            let stopFirst = Locked(false)
            func instance(_ name: String) -> LeaderElector {
                LeaderElector(client: client, configuration: .init(
                    leaseName: "talos-etcd-backup", namespace: "default", identity: name,
                    leaseDuration: .seconds(4), renewDeadline: .seconds(3), retryPeriod: .milliseconds(200)),
                    logger: quietLogger("le"))
            }
            /// Runs a controller while leading, until `stop` says so or the task is cancelled.
            @Sendable func lead(_ name: String, stop: Locked<Bool>?) async throws {
                leaders.withLock { $0.append(name) }
                let reconciler = RecordingReconciler()
                let informer = Informer<ConfigMap>(client: client, namespace: "default", logger: quietLogger("i"))
                let controller = Controller(name: name, primary: informer, reconciler: reconciler, logger: quietLogger("c"))
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await informer.run() }
                    group.addTask { try await controller.run() }
                    var recorded = 0
                    while !Task.isCancelled, !(stop?.withLock { $0 } ?? false) {
                        try? await Task.sleep(for: .milliseconds(10))
                        let log = reconciler.log.withLock { $0 }
                        reconciles.withLock { all in for _ in log[recorded...] { all.append((name, .now)) } }
                        recorded = log.count
                    }
                    group.cancelAll()
                }
            }
            let first = instance("first"), second = instance("second")
            let stoppedAt = Locked<ContinuousClock.Instant?>(nil)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await first.run { try await lead("first", stop: stopFirst) }
                    stoppedAt.withLock { $0 = .now }
                }
                try await eventually("first leads") { leaders.withLock { $0 } == ["first"] }
                group.addTask { try await second.run { try await lead("second", stop: nil) } }
                try await eventually("first reconciled every key") { reconciles.withLock { $0.count } >= 3 }
                try await Task.sleep(for: .milliseconds(600))
                #expect(leaders.withLock { $0 } == ["first"])  // the second is waiting

                stopFirst.withLock { $0 = true }  // a clean stop releases the lease
                try await eventually("second leads") { leaders.withLock { $0 } == ["first", "second"] }
                let handover = ContinuousClock.now - (stoppedAt.withLock { $0 } ?? .now)
                // Released, not waited out: the lease lasts 4 s; a handover takes about one retry
                // period (200 ms); 2 s leaves the rest as room for a loaded machine.
                #expect(handover < .seconds(2))
                try await eventually("second reconciled every key") { reconciles.withLock { $0.filter { $0.0 == "second" }.count } >= 3 }
                group.cancelAll()
            }
            let log = reconciles.withLock { $0 }
            let lastByFirst = log.filter { $0.0 == "first" }.map(\.1).max()!
            let firstBySecond = log.filter { $0.0 == "second" }.map(\.1).min()!
            #expect(lastByFirst < firstBySecond)
            let lease = try await client.get(Lease.self, .leases, namespace: "default", name: "talos-etcd-backup")
            #expect(lease.spec?.holderIdentity == nil)  // the second released it too when cancelled
            #expect(lease.spec?.leaseTransitions == 1)
        }
    }

    @Test("acquiring a lease the server refuses (its namespace is missing) is retried, not fatal")
    func acquisitionRetriesErrors() async throws {
        try await withServer { server, client in
            let elector = LeaderElector(client: client, configuration: .init(
                leaseName: "l", namespace: "created-later", identity: "only",
                leaseDuration: .seconds(2), renewDeadline: .milliseconds(800), retryPeriod: .milliseconds(100)),
                logger: quietLogger("le"))
            let leading = Locked(false)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await elector.run {
                        leading.withLock { $0 = true }
                        try await Task.sleep(for: .seconds(30))
                    }
                }
                try await Task.sleep(for: .milliseconds(400))
                #expect(!leading.withLock { $0 }, "no lease without its namespace")
                _ = try await client.create(try GenericObject(raw: ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": "created-later"]]), .namespaces)
                try await eventually("leadership once the namespace exists") { leading.withLock { $0 } }
                group.cancelAll()
            }
        }
    }

    @Test("a leader that cannot renew stops its work within the renew deadline")
    func lostLease() async throws {
        try await withServer { server, client in
            let elector = LeaderElector(client: client, configuration: .init(
                leaseName: "l", namespace: "default", identity: "only",
                leaseDuration: .seconds(2), renewDeadline: .milliseconds(800), retryPeriod: .milliseconds(200)),
                logger: quietLogger("le"))
            let started = Locked(false)
            let workCancelled = Locked(false)
            await #expect(throws: LeaderElector.LeadershipLost.self) {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        try await elector.run {
                            started.withLock { $0 = true }
                            do { try await Task.sleep(for: .seconds(30)) } catch { workCancelled.withLock { $0 = true } }
                        }
                    }
                    try await eventually("leading") { started.withLock { $0 } }
                    await server.failNextRequests(1000, code: 500, pathContains: "/leases/")
                    try await group.next()
                }
            }
            #expect(workCancelled.withLock { $0 })
        }
    }
}

@Suite("Event recorder")
struct EventRecorderTests {
    @Test("records events.k8s.io/v1 Events and counts repeats in one object")
    func aggregates() async throws {
        try await withServer { _, client in
            let object = try await client.create(ConfigMap("subject"), ConfigMap.resourceType, namespace: "default")
            let recorder = EventRecorder(client: client, reportingController: "talos.alperen.cloud/etcd-backup", reportingInstance: "test", logger: quietLogger("e"))
            let sending = Task { try await recorder.run() }
            defer { sending.cancel() }
            let regarding = EventRecorder.Regarding(object)
            for _ in 0..<3 {
                recorder.record(regarding, type: .warning, reason: "CredentialsNotFound", action: "Backup", note: "Secret default/x has no key y")
            }
            recorder.record(regarding, type: .normal, reason: "BackupStarted", action: "Backup", note: "started")
            await recorder.flush()
            let events = try await client.list(GenericObject.self, .events, namespace: "default").items
            #expect(events.count == 2)
            let warning = try #require(events.first { $0["reason"] == "CredentialsNotFound" })
            #expect(warning["series"]?["count"] == 3)
            #expect(warning["type"] == "Warning")
            #expect(warning["regarding"]?["uid"] == .string(object.metadata.uid!))
            #expect(warning["reportingController"] == "talos.alperen.cloud/etcd-backup")
        }
    }

    @Test("distinct events: the remembered series stay bounded (LRU); a recently repeated one survives eviction")
    func seriesAreBounded() async throws {
        try await withServer { _, client in
            #expect(EventRecorder(client: client, reportingController: "c", reportingInstance: "test").seriesCapacity == 4_096,
                    "client-go's event cache size")
            let recorder = EventRecorder(client: client, reportingController: "c", reportingInstance: "test", seriesCapacity: 100,
                                         queueCapacity: 10_000, logger: quietLogger("e"))
            let sending = Task { try await recorder.run() }
            defer { sending.cancel() }
            let regarding = EventRecorder.Regarding(apiVersion: "v1", kind: "ConfigMap", namespace: "default", name: "subject", uid: nil)
            recorder.record(regarding, type: .warning, reason: "Kept", action: "Test", note: "kept")
            // 500 distinct notes, the kept one repeated every 50: it stays recently used.
            for index in 0..<500 {
                recorder.record(regarding, type: .normal, reason: "Distinct", action: "Test", note: "event \(index)")
                if index % 50 == 0 { recorder.record(regarding, type: .warning, reason: "Kept", action: "Test", note: "kept") }
            }
            await recorder.flush()
            #expect(recorder.seriesCount == 100)
            recorder.record(regarding, type: .warning, reason: "Kept", action: "Test", note: "kept")
            await recorder.flush()
            let events = try await client.listAll(GenericObject.self, .events, namespace: "default").items
            let kept = events.filter { $0["reason"] == "Kept" }
            #expect(kept.count == 1, "the repeated series was never evicted")
            #expect(kept.first?["series"]?["count"] == 12)
            #expect(recorder.seriesCount == 100)
        }
    }

    @Test("recording never waits for the API server: events queue, a full queue drops and counts, a graceful shutdown sends what is queued")
    func queueing() async throws {
        try await withServer { server, client in
            let recorder = EventRecorder(client: client, reportingController: "c", reportingInstance: "test", queueCapacity: 3, logger: quietLogger("e"))
            let regarding = EventRecorder.Regarding(apiVersion: "v1", kind: "ConfigMap", namespace: "default", name: "subject", uid: nil)
            await server.setLatency(.seconds(2))
            // `record` is synchronous (not async): it cannot wait for the slow server; what it
            // did with the five is what the queue shows at once.
            for index in 0..<5 { recorder.record(regarding, type: .normal, reason: "Queued", action: "Test", note: "event \(index)") }
            #expect(recorder.droppedEvents == 2, "a queue of 3 keeps the first three")
            await server.setLatency(.zero)
            let group = ServiceGroup(configuration: .init(services: [recorder], logger: quietLogger("group")))
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                await group.triggerGracefulShutdown()
                try await tasks.next()
            }
            let notes = try await client.list(GenericObject.self, .events, namespace: "default").items.compactMap { event -> String? in
                if case .string(let note)? = event["note"] { note } else { nil }
            }
            #expect(notes.sorted() == ["event 0", "event 1", "event 2"])
        }
    }
}
