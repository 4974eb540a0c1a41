import AsyncHTTPClient
import ControllerRuntime
import Waiting
import Foundation
import KubernetesClient
import KubernetesTesting
import OperatorEndpoints
import ServiceLifecycle
import Synchronization
import TestSupport
import Testing

@Suite("Metrics")
struct MetricsTests {
    /// Succeeds for `ok-*`, asks to be requeued for `later-*`, throws for `bad-*` twice and
    /// then succeeds (so that every count comes to rest).
    struct ScriptedFailure: Error {}

    final class ScriptedReconciler: Reconciler {
        let failures = Mutex([String: Int]())

        func reconcile(_ key: ObjectKey) async throws -> ReconcileResult {
            if key.name.hasPrefix("bad-"), failures.withLock({ failures in
                failures[key.name, default: 0] += 1
                return failures[key.name]! <= 2
            }) {
                throw ScriptedFailure()
            }
            if key.name.hasPrefix("later-") { return .requeue(after: .seconds(3600)) }
            return .done
        }
    }

    /// One scrape of `port`'s /metrics: status, content type, body.
    static func scrape(_ port: Int) async throws -> (Int, String, String) {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/metrics"), timeout: .seconds(60))
        let body = try await response.body.collect(upTo: 4 << 20)
        return (Int(response.status.code), response.headers.first(name: "content-type") ?? "", String(buffer: body))
    }

    @Test("controller-runtime's metrics under its names: reconciles by result, errors, time, work queue, leader status; promtool accepts the scrape")
    func controllerRuntimeMetrics() async throws {
        try await withServer { _, client in
            for name in ["ok-1", "ok-2", "later-1", "bad-1"] {
                _ = try await client.create(ConfigMap(name), ConfigMap.resourceType, namespace: "default")
            }
            let factory = DescribedMetricsFactory(families: ControllerRuntimeMetrics.families)
            let manager = Manager(client: client, configuration: .init(namespace: "default", metrics: factory), logger: quietLogger("m"))
            manager.add(Controller(name: "scripted", primary: manager.informer(ConfigMap.self), reconciler: ScriptedReconciler(),
                                   workers: 3, metrics: factory, logger: quietLogger("c")))
            let (ports, announce) = AsyncStream<Int>.makeStream()
            manager.add(MetricsServer(host: "127.0.0.1", port: 0, registry: factory.registry, onListening: { announce.yield($0) }, logger: quietLogger("s")))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await manager.run() }
                var iterator = ports.makeAsyncIterator()
                let port = try #require(await iterator.next())
                // Every key done: a count is taken when its reconcile returns, and the failing
                // key's last reconcile, a success, comes after its two failures were counted.
                // From then on every count below is at rest and exact.
                try await eventually("every key reconciled, the failing one after two retries") {
                    let text = try await Self.scrape(port).2
                    return (metricSample(#"controller_runtime_reconcile_total{controller="scripted",result="success"}"#, in: text) ?? 0) >= 3
                        && (metricSample(#"controller_runtime_reconcile_total{controller="scripted",result="requeue_after"}"#, in: text) ?? 0) >= 1
                }
                let (status, contentType, text) = try await Self.scrape(port)
                #expect(status == 200)
                #expect(contentType == "text/plain; version=0.0.4; charset=utf-8")
                #expect(metricSample(#"controller_runtime_reconcile_total{controller="scripted",result="success"}"#, in: text) == 3)
                #expect(metricSample(#"controller_runtime_reconcile_total{controller="scripted",result="requeue_after"}"#, in: text) == 1)
                #expect(metricSample(#"controller_runtime_reconcile_total{controller="scripted",result="error"}"#, in: text) == 2)
                #expect(metricSample(#"controller_runtime_reconcile_errors_total{controller="scripted"}"#, in: text) == 2)
                #expect(metricSample(#"workqueue_retries_total{name="scripted",controller="scripted"}"#, in: text) == 2)
                #expect(metricSample(#"controller_runtime_reconcile_time_seconds_count{controller="scripted"}"#, in: text) == 6, "four keys, one of them three times")
                #expect(metricSample(#"controller_runtime_max_concurrent_reconciles{controller="scripted"}"#, in: text) == 3)
                #expect((metricSample(#"workqueue_adds_total{name="scripted",controller="scripted"}"#, in: text) ?? 0) >= 4)
                #expect(metricSample(#"workqueue_queue_duration_seconds_count{name="scripted",controller="scripted"}"#, in: text) != nil)
                #expect(metricSample(#"workqueue_depth{name="scripted",controller="scripted"}"#, in: text) != nil)
                #expect(metricSample(#"leader_election_master_status{name="none"}"#, in: text) == 1, "controllers run: this process acts")
                #expect((metricSample("process_resident_memory_bytes", in: text) ?? 0) > 1_000_000)
                #expect((metricSample("process_start_time_seconds", in: text) ?? 0) > Date().timeIntervalSince1970 - 3600)
                #expect(metricSample("process_cpu_seconds_total", in: text) != nil)
                #expect(text.contains("# HELP controller_runtime_reconcile_total "))

                let check = try await ProcessRunner.run("/usr/bin/promtool", ["check", "metrics"], stdin: Data(text.utf8))
                #expect(check.status == 0, "promtool check metrics: \(check.stdout)\(check.stderr)")
                group.cancelAll()
            }
        }
    }

    @Test("a metrics port already taken fails the server with an error naming the endpoint, the address and the flag")
    func portTaken() async throws {
        let factory = DescribedMetricsFactory(families: [])
        let (ports, announce) = AsyncStream<Int>.makeStream()
        let first = MetricsServer(host: "127.0.0.1", port: 0, registry: factory.registry, onListening: { announce.yield($0) }, logger: quietLogger("s"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await first.run() }
            var iterator = ports.makeAsyncIterator()
            let port = try #require(await iterator.next())
            let second = MetricsServer(host: "127.0.0.1", port: port, registry: factory.registry, logger: quietLogger("s"))
            let failure = await TestHelpers.caught(EndpointFailed.self) {
                try await withDeadline(.seconds(120), "the second server's failure") { try await second.run() }
            }
            let description = try #require(failure?.description)
            #expect(description.contains("metrics endpoint cannot serve on 127.0.0.1:\(port) (--metrics-bind-address)"), "\(description)")
            #expect(description.contains("Address already in use"), "\(description)")
            group.cancelAll()
        }
    }

    @Test("--metrics-bind-address forms: host:port, :port, 0; anything else is refused")
    func bindAddress() {
        #expect(BindAddress(parsing: ":8080") == .address(host: "0.0.0.0", port: 8080))
        #expect(BindAddress(parsing: "0") == .disabled)
        #expect(BindAddress(parsing: "localhost") == nil)
    }
}
