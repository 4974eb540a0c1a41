import ControllerRuntime
import Waiting
import Foundation
import KubernetesClient
import KubernetesTesting
import TestSupport
import Testing

/// The Kubernetes API in memory, with the Lease updates a test scripts: answered, hanging until
/// cancelled (an API server that stopped answering), or answered after a latency on the test's
/// manual clock.
final class ScriptedLeaseAPI: KubernetesAPI {
    enum Updates: Sendable { case answer, hang, latency(Duration) }

    let base = InMemoryKubernetesAPI()
    let clock: ManualClock
    let updates = Locked(Updates.answer)
    let leaseUpdates = Locked(0)

    init(clock: ManualClock) { self.clock = clock }

    func get<T: Decodable>(_ type: T.Type, _ resource: ResourceType, namespace: String?, name: String) async throws -> T {
        try await base.get(type, resource, namespace: namespace, name: name)
    }
    func list<T: Decodable & Sendable>(_ type: T.Type, _ resource: ResourceType, namespace: String?, options: ListOptions) async throws -> ObjectList<T> {
        try await base.list(type, resource, namespace: namespace, options: options)
    }
    func create<T: Codable>(_ object: T, _ resource: ResourceType, namespace: String?) async throws -> T {
        try await base.create(object, resource, namespace: namespace)
    }
    func update<T: Codable>(_ object: T, _ resource: ResourceType, namespace: String?, name: String) async throws -> T {
        if resource == .leases {
            leaseUpdates.withLock { $0 += 1 }
            switch updates.withLock({ $0 }) {
            case .answer: break
            case .hang: try await waitUntilCancelled()
            case .latency(let latency): try await clock.sleep(for: latency)
            }
        }
        return try await base.update(object, resource, namespace: namespace, name: name)
    }
    func updateStatus<T: Codable>(_ object: T, _ resource: ResourceType, namespace: String?, name: String) async throws -> T {
        try await base.updateStatus(object, resource, namespace: namespace, name: name)
    }
    func patch<T: Decodable>(_ type: T.Type, _ resource: ResourceType, namespace: String?, name: String, mergePatch: JSONValue,
                             subresource: String?) async throws -> T {
        try await base.patch(type, resource, namespace: namespace, name: name, mergePatch: mergePatch, subresource: subresource)
    }
    func delete(_ resource: ResourceType, namespace: String?, name: String, options: DeleteOptions) async throws {
        try await base.delete(resource, namespace: namespace, name: name, options: options)
    }
    func watch<T: Decodable & Sendable>(_ type: T.Type, _ resource: ResourceType, namespace: String?, options: WatchOptions) async throws -> WatchStream<T> {
        try await base.watch(type, resource, namespace: namespace, options: options)
    }
}

/// Lease renewal's logic on a manual clock (lease 15 s, renew deadline 10 s, retry period 2 s,
/// client-go's defaults): when leadership is lost, and that a process that got no CPU for a
/// while is judged by a real renewal, not by the wall clock alone.
@Suite("Leader election on a manual clock")
struct LeaderElectorTests {
    static let configuration = LeaderElector.Configuration(
        leaseName: "talos-etcd-backup", namespace: "default", identity: "only",
        leaseDuration: .seconds(15), renewDeadline: .seconds(10), retryPeriod: .seconds(2))

    /// Runs an elector on `api` until `body` returns; `lost` is set when it reports the loss.
    func withLeader(_ api: ScriptedLeaseAPI, _ body: (_ run: Task<Void, any Error>, _ lost: Locked<Bool>) async throws -> Void) async throws {
        let elector = LeaderElector(client: api, configuration: Self.configuration, clock: api.clock, logger: quietLogger("le"))
        let leading = Locked(false), lost = Locked(false)
        let run = Task {
            try await elector.run(onLeadershipLost: { lost.withLock { $0 = true } }) {
                leading.withLock { $0 = true }
                try await waitUntilCancelled()
            }
        }
        try await eventually("the elector leads") { leading.withLock { $0 } }
        try await body(run, lost)
        run.cancel()
        _ = await run.result
    }

    @Test("renewals that hang: leadership is lost once the renew deadline has passed since the last renewal, not before")
    func lostAtTheRenewDeadline() async throws {
        let clock = ManualClock()
        let api = ScriptedLeaseAPI(clock: clock)
        try await withLeader(api) { run, lost in
            try await clock.waitForSleepers(at: [.seconds(2)])  // the retry period
            clock.advance(by: .seconds(2))                       // renewed at 2 s
            try await clock.waitForSleepers(at: [.seconds(4)])
            #expect(api.leaseUpdates.withLock { $0 } == 1)
            api.updates.withLock { $0 = .hang }
            clock.advance(by: .seconds(2))  // 4 s: this attempt hangs; it is given until 12 s
            try await clock.waitForSleepers(at: [.seconds(12)])
            clock.advance(by: .seconds(8) - .milliseconds(1))
            #expect(!lost.withLock { $0 }, "9.999 s without a renewal: still leading")
            clock.advance(by: .milliseconds(1))  // 12 s: 10 s since the last renewal
            try await eventually("leadership lost") { lost.withLock { $0 } }
            // The release on the way out hangs too: it has its own bound (5 s).
            try await clock.waitForSleepers(at: [.seconds(17)])
            clock.advance(by: .seconds(5))
            await #expect(throws: LeaderElector.LeadershipLost.self) { try await run.value }
        }
    }

    @Test("a process that got no CPU for longer than the renew deadline keeps leading when its renewal succeeds (the update is conditional, so success proves nobody took the lease)")
    func starvedLeaderRenews() async throws {
        let clock = ManualClock()
        let api = ScriptedLeaseAPI(clock: clock)
        try await withLeader(api) { run, lost in
            api.updates.withLock { $0 = .latency(.milliseconds(500)) }  // a slow API server
            try await clock.waitForSleepers(at: [.seconds(2)])
            clock.advance(by: .seconds(12))  // the retry sleep ends 10 s late: the renew deadline has passed
            // The renewal answers at 12.5 s; the attempt is bounded at 14 s (a retry period),
            // not at 12 s + 1 ms, which a slow answer would always miss.
            try await clock.waitForSleepers(at: [.milliseconds(12_500), .seconds(14)])
            clock.advance(by: .milliseconds(500))
            try await clock.waitForSleepers(at: [.milliseconds(14_500)])  // renewed; back to the retry period
            #expect(!lost.withLock { $0 })
            #expect(api.leaseUpdates.withLock { $0 } == 1)
            api.updates.withLock { $0 = .answer }  // so that the release on the way out answers
            let lease = try await api.base.get(Lease.self, .leases, namespace: "default", name: "talos-etcd-backup")
            #expect(lease.spec?.holderIdentity == "only")
        }
    }
}

