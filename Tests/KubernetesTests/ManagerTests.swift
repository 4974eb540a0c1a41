import AsyncHTTPClient
import ControllerRuntime
import OperatorEndpoints
import Foundation
import KubernetesClient
import KubernetesTesting
import ServiceLifecycle
import TestSupport
import Testing

@Suite("Manager")
struct ManagerTests {
    @Test("two controllers reading one kind share one informer: one list/watch, both reconcile every object")
    func sharedInformer() async throws {
        try await withServer { server, client in
            for index in 0..<3 { _ = try await client.create(ConfigMap("c\(index)"), ConfigMap.resourceType, namespace: "default") }
            let manager = Manager(client: client, configuration: .init(namespace: "default"), logger: quietLogger("manager"))
            let informer = manager.informer(ConfigMap.self)
            #expect(manager.informer(ConfigMap.self) === informer)
            let first = RecordingReconciler(), second = RecordingReconciler()
            manager.add(Controller(name: "first", primary: informer, reconciler: first, logger: quietLogger("c")))
            manager.add(Controller(name: "second", primary: manager.informer(ConfigMap.self), reconciler: second, logger: quietLogger("c")))
            let watchesBefore = await server.watchesStarted
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await manager.run() }
                let all: Set<String> = ["default/c0", "default/c1", "default/c2"]
                try await eventually("both controllers reconciled every ConfigMap") {
                    Set(first.log.withLock { $0 }) == all && Set(second.log.withLock { $0 }) == all
                }
                #expect(manager.informersSynced)
                try await eventually("the informer's watch is open") { await server.openWatchCount == 1 }
                #expect(await server.watchesStarted - watchesBefore == 1, "one watch for both controllers")
                _ = try await client.create(ConfigMap("c3"), ConfigMap.resourceType, namespace: "default")
                try await eventually("both saw the new one") {
                    first.log.withLock { $0 }.contains("default/c3") && second.log.withLock { $0 }.contains("default/c3")
                }
                group.cancelAll()
            }
        }
    }

    @Test("a controller's filter drops the updates it does not pass; additions always pass")
    func filteredUpdates() async throws {
        try await withServer { _, client in
            let informer = Informer<ConfigMap>(client: client, namespace: "default", logger: quietLogger("i"))
            let reconciler = RecordingReconciler()
            let labelsChanged = EventFilter<ConfigMap> { old, new in old.metadata.labels != new.metadata.labels }
            let controller = Controller(name: "filtered", primary: informer, filter: labelsChanged, reconciler: reconciler, logger: quietLogger("c"))
            _ = try await client.create(ConfigMap("c"), ConfigMap.resourceType, namespace: "default")
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await informer.run() }
                group.addTask { try await controller.run() }
                try await eventually("reconciled once on addition") { reconciler.log.withLock { $0 } == ["default/c"] }
                _ = try await client.patch(ConfigMap.self, ConfigMap.resourceType, namespace: "default", name: "c", mergePatch: ["data": ["v": "1"]])
                try await eventually("the cache has the data change") {
                    informer.cache.get(ObjectKey(namespace: "default", name: "c"))?.data == ["v": "1"]
                }
                try await Task.sleep(for: .milliseconds(300))
                #expect(reconciler.log.withLock { $0 } == ["default/c"])
                _ = try await client.patch(ConfigMap.self, ConfigMap.resourceType, namespace: "default", name: "c", mergePatch: ["metadata": ["labels": ["a": "b"]]])
                try await eventually("reconciled again on a label change") { reconciler.log.withLock { $0 } == ["default/c", "default/c"] }
                group.cancelAll()
            }
        }
    }

    @Test("specOrMetadataChanged passes spec, label, annotation and deletion changes, not status or finalizer writes")
    func specOrMetadataChanged() {
        var old = ConfigMap("c")
        old.metadata.generation = 1
        old.metadata.resourceVersion = "1"
        let filter = EventFilter<ConfigMap>.specOrMetadataChanged
        var statusWrite = old
        statusWrite.metadata.resourceVersion = "2"
        statusWrite.data = ["status": "written"]
        statusWrite.metadata.finalizers = ["example.com/f"]
        #expect(!filter.passes(.updated(old: old, new: statusWrite)))
        var specChange = old
        specChange.metadata.generation = 2
        #expect(filter.passes(.updated(old: old, new: specChange)))
        var labelled = old
        labelled.metadata.labels = ["a": "b"]
        #expect(filter.passes(.updated(old: old, new: labelled)))
        var annotated = old
        annotated.metadata.annotations = ["a": "b"]
        #expect(filter.passes(.updated(old: old, new: annotated)))
        var deleting = old
        deleting.metadata.deletionTimestamp = KubeTime(Date())
        #expect(filter.passes(.updated(old: old, new: deleting)))
        #expect(filter.passes(.added(old)) && filter.passes(.deleted(old)))
    }

    @Test("a handler added after the informer synced gets the cache replayed as additions")
    func lateHandlerReplay() async throws {
        try await withServer { _, client in
            for index in 0..<2 { _ = try await client.create(ConfigMap("c\(index)"), ConfigMap.resourceType, namespace: "default") }
            let informer = Informer<ConfigMap>(client: client, namespace: "default", logger: quietLogger("i"))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await informer.run() }
                await informer.waitForSync()
                let seen = Locked<[String]>([])
                let registration = informer.addHandler { event in
                    if case .added(let object) = event { seen.withLock { $0.append(object.metadata.name ?? "") } }
                }
                #expect(seen.withLock { $0 }.sorted() == ["c0", "c1"])
                informer.removeHandler(registration)
                _ = try await client.create(ConfigMap("c2"), ConfigMap.resourceType, namespace: "default")
                try await eventually("c2 cached") { informer.cache.get(ObjectKey(namespace: "default", name: "c2")) != nil }
                #expect(seen.withLock { $0 }.sorted() == ["c0", "c1"])  // removed: no more events
                group.cancelAll()
            }
        }
    }
}

/// The manager's shutdown has a deadline: a type named ...TimingTests, so the test command
/// runs it apart from the CPU-heavy suites (it took 10.7 s beside them in a fresh-clone run).
@Suite("Manager shutdown")
struct ManagerTimingTests {
    @Test("a graceful shutdown stops an in-flight reconcile, releases the lease and ends the manager without error")
    func gracefulShutdown() async throws {
        try await withServer { _, client in
            _ = try await client.create(ConfigMap("slow"), ConfigMap.resourceType, namespace: "default")
            let election = LeaderElector.Configuration(leaseName: "manager-test", namespace: "default", identity: "me",
                                                      leaseDuration: .seconds(15), renewDeadline: .seconds(10), retryPeriod: .seconds(1))
            let manager = Manager(client: client, configuration: .init(namespace: "default", leaderElection: election), logger: quietLogger("m"))
            #expect(manager.identity == "me")
            let reconciler = RecordingReconciler(delay: .seconds(60))
            manager.add(Controller(name: "slow", primary: manager.informer(ConfigMap.self), reconciler: reconciler, logger: quietLogger("c")))
            let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: manager.serviceConfigurations(), logger: quietLogger("group")))
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                // Lease, list and watch first: generous on a loaded machine (the suite runs in parallel).
                try await eventually(timeout: .seconds(30), "the reconcile started") { reconciler.active.withLock { !$0.isEmpty } }
                let stopping = ContinuousClock.now
                await group.triggerGracefulShutdown()
                try await tasks.next()
                #expect(ContinuousClock.now - stopping < .seconds(10))  // about 30 ms alone; the lease release may take up to 5 s on a loaded machine
            }
            #expect(reconciler.active.withLock { $0.isEmpty })
            let lease = try await client.get(Lease.self, .leases, namespace: "default", name: "manager-test")
            #expect(lease.spec?.holderIdentity == nil)
        }
    }
}

@Suite("Health probes")
struct HealthProbeTests {
    /// GET `path` on 127.0.0.1:`port`: status code and body.
    func probe(_ port: Int, _ path: String) async throws -> (Int, String) {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)"), timeout: .seconds(60))
        let body = try await response.body.collect(upTo: 4096)
        return (Int(response.status.code), String(buffer: body))
    }

    @Test("/healthz while the manager runs; /readyz once the caches synced, and no longer from the start of a graceful shutdown")
    func states() async throws {
        try await withServer { server, client in
            // The first list is held back, so "not synced yet" can be seen, until released.
            await server.holdRequests(method: "GET", pathContains: "/configmaps")
            let manager = Manager(client: client, configuration: .init(namespace: "default"), logger: quietLogger("m"))
            let reconciler = ReadinessObservingReconciler { manager.readinessProblem }
            manager.add(Controller(name: "slow", primary: manager.informer(ConfigMap.self), reconciler: reconciler, logger: quietLogger("c")))
            let (ports, announce) = AsyncStream<Int>.makeStream()
            manager.add(HealthProbeServer(host: "127.0.0.1", port: 0, liveness: { manager.livenessProblem },
                                          readiness: { manager.readinessProblem }, onListening: { announce.yield($0) }, logger: quietLogger("h")))
            #expect(manager.readinessProblem == "the manager is not running")
            let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: manager.serviceConfigurations(), logger: quietLogger("group")))
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                var iterator = ports.makeAsyncIterator()
                let port = try #require(await iterator.next())
                #expect(try await probe(port, "/healthz") == (200, "ok\n"))
                let (code, body) = try await probe(port, "/readyz")
                #expect(code == 503 && body == "caches not synced yet: configmaps\n")
                await server.releaseRequests(method: "GET", pathContains: "/configmaps")
                try await eventually("ready once synced") { try await probe(port, "/readyz").0 == 200 }

                _ = try await client.create(ConfigMap("slow"), ConfigMap.resourceType, namespace: "default")
                try await eventually("a reconcile in flight") { reconciler.started.withLock { $0 } }
                await group.triggerGracefulShutdown()
                try await tasks.next()
            }
            #expect(reconciler.seenWhenStopped.withLock { $0 } == "shutting down",
                    "readiness was already false when the in-flight reconcile was stopped")
            #expect(manager.livenessProblem == "the manager is not running")
        }
    }

    @Test("--health-probe-bind-address forms: host:port, :port, 0; anything else is refused")
    func bindAddress() {
        #expect(BindAddress(parsing: ":8081") == .address(host: "0.0.0.0", port: 8081))
        #expect(BindAddress(parsing: "127.0.0.1:9") == .address(host: "127.0.0.1", port: 9))
        #expect(BindAddress(parsing: "0") == .disabled)
        #expect(BindAddress(parsing: "8081") == nil)
        #expect(BindAddress(parsing: ":99999") == nil)
    }
}

/// Waits in its reconcile until cancelled, and notes what readiness said at that moment.
final class ReadinessObservingReconciler: Reconciler {
    let started = Locked(false)
    let seenWhenStopped = Locked<String?>(nil)
    let readiness: @Sendable () -> String?

    init(readiness: @escaping @Sendable () -> String?) { self.readiness = readiness }

    func reconcile(_ key: ObjectKey) async throws -> ReconcileResult {
        started.withLock { $0 = true }
        try? await Task.sleep(for: .seconds(60))
        seenWhenStopped.withLock { $0 = readiness() }
        return .done
    }
}
