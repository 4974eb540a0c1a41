import Foundation
import KubernetesClient
import Logging
import Waiting

/// Leader election on a `coordination.k8s.io/v1` Lease, as client-go does it: take the lease
/// when it is free or its holder has not renewed it for `leaseDuration` (measured on this
/// process's clock from when it last saw the record change, so clock skew does not matter);
/// renew every `retryPeriod`; if renewing has failed for `renewDeadline`, leadership is lost
/// and the leader's work is cancelled at once. On a clean stop the lease is released so
/// another instance takes over without waiting.
///
/// Judged on progress, not on wall time alone: when the renew deadline passed while no attempt
/// had failed (the process got no CPU for that long, on a busy node), one real attempt is made,
/// given one `retryPeriod`, before leadership is given up: a renewal that succeeds proves
/// nobody took the lease meanwhile (the write is conditional on the record read), so a starved
/// leader that can still renew keeps leading. Otherwise, as client-go: once an attempt has
/// failed, the next is bounded by what is left of the renew deadline, so renewals that fail or
/// hang end leadership at the deadline.
public final class LeaderElector: Sendable {
    public struct Configuration: Sendable {
        public var leaseName: String
        public var namespace: String
        public var identity: String
        public var leaseDuration: Duration
        public var renewDeadline: Duration
        public var retryPeriod: Duration

        public init(leaseName: String, namespace: String, identity: String = LeaderElector.defaultIdentity(),
                    leaseDuration: Duration = .seconds(15), renewDeadline: Duration = .seconds(10), retryPeriod: Duration = .seconds(2)) {
            self.leaseName = leaseName
            self.namespace = namespace
            self.identity = identity
            self.leaseDuration = leaseDuration
            self.renewDeadline = renewDeadline
            self.retryPeriod = retryPeriod
        }
    }

    /// Thrown by ``run(whileLeader:)`` when the lease could not be renewed in time.
    public struct LeadershipLost: Error, CustomStringConvertible {
        public var description: String
    }

    /// `POD_NAME` (or the host name) plus a random suffix, so two processes on one host differ.
    public static func defaultIdentity() -> String {
        let base = ProcessInfo.processInfo.environment["POD_NAME"] ?? ProcessInfo.processInfo.hostName
        return "\(base)_\(UUID().uuidString.prefix(8).lowercased())"
    }

    public let configuration: Configuration
    private let client: any KubernetesAPI
    private let logger: Logger
    /// What the retry period, the renew deadline and the lease's expiry are measured on.
    private let clock: any Clock<Duration>
    private let time: ElapsedTime

    /// `clock`: the real clock in production; tests pass a manual one.
    public init(client: any KubernetesAPI, configuration: Configuration, clock: any Clock<Duration> = TimerClock(),
                logger: Logger = Logger(label: "leader-election")) {
        self.client = client
        self.configuration = configuration
        self.clock = clock
        self.time = ElapsedTime(clock)
        var logger = logger
        logger[metadataKey: "identity"] = "\(configuration.identity)"
        self.logger = logger
    }

    /// Waits to become leader, runs `whileLeader` for as long as leadership lasts, and
    /// releases the lease when `whileLeader` returns or the task is cancelled. Throws
    /// ``LeadershipLost`` when renewal fails.
    ///
    /// `onLeadershipLost` is called the moment renewal has failed, before the work has wound
    /// down: a process that must exit when it loses the lease (so that it never acts without it)
    /// can bound the time it gives the work to stop.
    public func run(onLeadershipLost: @escaping @Sendable () -> Void = {}, whileLeader: @escaping @Sendable () async throws -> Void) async throws {
        var observed = Observed()
        while true {
            do {
                if try await tryAcquireOrRenew(&observed) { break }
            } catch let error where !(error is CancellationError) {
                // An API server that is down or refuses (a missing namespace, RBAC) is retried,
                // as client-go's leader election does: the process waits, it does not exit.
                logger.warning("could not acquire the lease; retrying", metadata: [
                    "lease": "\(configuration.namespace)/\(configuration.leaseName)", "error": "\(error)"])
            }
            try await time.sleep(for: configuration.retryPeriod)
        }
        logger.info("became leader", metadata: ["lease": "\(configuration.namespace)/\(configuration.leaseName)"])
        let renewing = observed
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await whileLeader() }
                group.addTask { [self] in
                    do {
                        try await self.keepRenewing(renewing)
                    } catch let lost as LeadershipLost {
                        onLeadershipLost()
                        throw lost
                    }
                }
                try await group.next()  // the work ended, or renewal failed
                group.cancelAll()
            }
        } catch {
            await releaseEvenIfCancelled()
            throw error
        }
        await releaseEvenIfCancelled()
    }

    /// The release must reach the API server although the caller may have been cancelled
    /// (that is how a clean shutdown arrives), so it runs in a task of its own, awaited here,
    /// and for at most the renew deadline (5 s at most): an API server that does not answer
    /// must not hold up a shutdown; the lease then expires on its own.
    private func releaseEvenIfCancelled() async {
        let limit = min(configuration.renewDeadline, .seconds(5))
        await Task {
            do {
                try await withDeadline(limit, "releasing the lease", clock: self.clock) { await self.release() }
            } catch {
                self.logger.warning("could not release the lease in time; it expires on its own", metadata: ["error": "\(error)"])
            }
        }.value
    }

    struct Observed {
        var record: Lease?
        /// When the record was last seen to change, on this elector's clock.
        var time: Duration?
    }

    private func keepRenewing(_ start: Observed) async throws {
        var observed = start
        var lastRenewal = time.now
        var failedSinceRenewal = false
        while true {
            try await time.sleep(for: configuration.retryPeriod)
            // One attempt may not outlast the renew deadline (client retries included); but
            // when the deadline passed without any attempt failing (a pause of the whole
            // process), the attempt that decides gets one retry period.
            let remaining = configuration.renewDeadline - (time.now - lastRenewal)
            let floor = failedSinceRenewal ? Duration.milliseconds(1) : configuration.retryPeriod
            let attempt = await renewWithin(max(remaining, floor), observed)
            if let updated = attempt.observed { observed = updated }
            let renewed = attempt.renewed
            failedSinceRenewal = !renewed
            if renewed {
                lastRenewal = time.now
            } else if time.now - lastRenewal >= configuration.renewDeadline {
                logger.error("lost leadership: could not renew the lease in time")
                throw LeadershipLost(description: "lease \(configuration.namespace)/\(configuration.leaseName) not renewed within \(configuration.renewDeadline)")
            } else if let holder = observed.record?.spec?.holderIdentity, holder != configuration.identity, !holder.isEmpty {
                logger.error("lost leadership to \(holder)")
                throw LeadershipLost(description: "lease \(configuration.namespace)/\(configuration.leaseName) is now held by \(holder)")
            }
        }
    }

    private func renewWithin(_ limit: Duration, _ observed: Observed) async -> (renewed: Bool, observed: Observed?) {
        await withTaskGroup(of: (Bool, Observed?)?.self) { group in
            group.addTask { [self] in
                var copy = observed
                let renewed = (try? await self.tryAcquireOrRenew(&copy)) ?? false
                return (renewed, copy)
            }
            group.addTask { [time] in
                try? await time.sleep(for: limit)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first.map { ($0.0, $0.1) } ?? (false, nil)
        }
    }

    /// One attempt; true when this instance holds the lease afterwards.
    func tryAcquireOrRenew(_ observed: inout Observed) async throws -> Bool {
        let now = Date()
        let durationSeconds = Int(configuration.leaseDuration.components.seconds)
        let current: Lease
        do {
            current = try await client.get(Lease.self, .leases, namespace: configuration.namespace, name: configuration.leaseName)
        } catch let error as KubernetesError where error.isNotFound {
            let lease = Lease(
                metadata: ObjectMeta(name: configuration.leaseName, namespace: configuration.namespace),
                spec: .init(holderIdentity: configuration.identity, leaseDurationSeconds: durationSeconds,
                            acquireTime: MicroTime(now), renewTime: MicroTime(now), leaseTransitions: 0))
            do {
                let created = try await client.create(lease, .leases, namespace: configuration.namespace)
                observed = Observed(record: created, time: time.now)
                return true
            } catch let error as KubernetesError where error.isAlreadyExists {
                return false
            }
        }
        if observed.record?.spec != current.spec {
            observed = Observed(record: current, time: time.now)
        }
        let holder = current.spec?.holderIdentity ?? ""
        let heldByUs = holder == configuration.identity
        let leaseDuration = Duration.seconds(current.spec?.leaseDurationSeconds ?? durationSeconds)
        let expired = holder.isEmpty || (observed.time.map { time.now - $0 >= leaseDuration } ?? true)
        guard heldByUs || expired else { return false }

        var updated = current
        var spec = current.spec ?? .init()
        if !heldByUs {
            spec.acquireTime = MicroTime(now)
            spec.leaseTransitions = (spec.leaseTransitions ?? 0) + 1
        }
        spec.holderIdentity = configuration.identity
        spec.leaseDurationSeconds = durationSeconds
        spec.renewTime = MicroTime(now)
        updated.spec = spec
        do {
            let written = try await client.update(updated, .leases, namespace: configuration.namespace, name: configuration.leaseName)
            observed = Observed(record: written, time: time.now)
            return true
        } catch let error as KubernetesError where error.isConflict {
            return false  // someone else wrote it first
        }
    }

    /// Gives the lease up, if held, so the next instance need not wait for it to expire.
    private func release() async {
        do {
            var lease = try await client.get(Lease.self, .leases, namespace: configuration.namespace, name: configuration.leaseName)
            guard lease.spec?.holderIdentity == configuration.identity else { return }
            lease.spec?.holderIdentity = nil
            lease.spec?.leaseDurationSeconds = 1
            lease.spec?.renewTime = MicroTime(Date())
            _ = try await client.update(lease, .leases, namespace: configuration.namespace, name: configuration.leaseName)
            logger.info("released the lease")
        } catch {
            logger.warning("could not release the lease; it expires on its own", metadata: ["error": "\(error)"])
        }
    }
}
