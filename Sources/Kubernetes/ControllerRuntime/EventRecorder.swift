import Foundation
import KubernetesClient
import Logging
import Waiting
import OrderedCollections
import ServiceLifecycle
import Synchronization

/// Records `events.k8s.io/v1` Events about objects, as `kubectl describe` and
/// `kubectl events` show them. A repeat of the same event (same object, type, reason, action
/// and note) updates the first one's `series.count` instead of creating another object.
///
/// Recording never fails or holds the caller, as client-go's broadcaster: ``record(_:type:reason:action:note:)``
/// queues the event (at most ``queueCapacity``, 1,000 as client-go's; beyond that events are
/// dropped, counted in ``droppedEvents`` and logged) and ``run()``, a service of the manager,
/// sends them one after another; a failure to send is logged. A reconcile therefore never
/// waits for an Event write. On a graceful shutdown what is queued is still sent.
///
/// An Event must live in the namespace of the object it regards; when that namespace refuses
/// new content (it is being deleted) or is gone, the Event goes to ``fallback`` (an object in
/// the operator's own namespace, such as its Lease) with the original object as `related`, so
/// a Warning about a namespace being deleted (an object left in the store) is not lost.
///
/// The series it remembers are a bounded LRU (``seriesCapacity``, 4,096 as in client-go's
/// event correlator): an operator that reports many distinct events keeps flat memory; a
/// repeat of a forgotten event starts a new Event object.
public final class EventRecorder: Service, Sendable {
    public enum EventType: String, Sendable { case normal = "Normal", warning = "Warning" }

    /// The object an event is about.
    public struct Regarding: Sendable, Hashable {
        public var apiVersion: String
        public var kind: String
        public var namespace: String?
        public var name: String
        public var uid: String?

        public init(apiVersion: String, kind: String, namespace: String?, name: String, uid: String?) {
            self.apiVersion = apiVersion
            self.kind = kind
            self.namespace = namespace
            self.name = name
            self.uid = uid
        }

        public init<Object: KubernetesObject>(_ object: Object) {
            self.init(apiVersion: Object.resourceType.apiVersion, kind: Object.resourceType.kind,
                      namespace: object.metadata.namespace, name: object.metadata.name ?? "", uid: object.metadata.uid)
        }
    }

    private struct SeriesKey: Hashable, Sendable {
        var regarding: Regarding
        var type: EventType
        var reason: String
        var action: String
        var note: String
    }

    /// An event waiting to be sent: its series and when it happened.
    private struct Pending: Sendable {
        var key: SeriesKey
        var time: Date
    }

    public static let defaultQueueCapacity = 1_000
    public let queueCapacity: Int
    private let queue: AsyncStream<Pending>
    private let input: AsyncStream<Pending>.Continuation
    /// Events queued or being sent, and the ``flush()`` callers waiting for none.
    private let unsent = Mutex<(count: Int, waiting: [Latch])>((0, []))
    private let dropped = Atomic<Int>(0)

    private let client: any KubernetesAPI
    private let controller: String
    private let instance: String
    private let logger: Logger
    /// Least recently used first.
    private let series = Mutex<OrderedDictionary<SeriesKey, (name: String, count: Int)>>([:])
    public let seriesCapacity: Int
    public let fallback: Regarding?

    public init(client: any KubernetesAPI, reportingController: String, reportingInstance: String, seriesCapacity: Int = 4_096,
                queueCapacity: Int = defaultQueueCapacity, fallback: Regarding? = nil, logger: Logger = Logger(label: "events")) {
        self.queueCapacity = max(1, queueCapacity)
        (queue, input) = AsyncStream.makeStream(of: Pending.self, bufferingPolicy: .bufferingOldest(self.queueCapacity))
        self.client = client
        self.fallback = fallback
        self.controller = reportingController
        self.instance = reportingInstance
        self.seriesCapacity = max(1, seriesCapacity)
        self.logger = logger
    }

    /// Event series remembered now (at most ``seriesCapacity``).
    public var seriesCount: Int { series.withLock { $0.count } }

    /// Stores `value` as the most recently used series, evicting the least recently used ones.
    private func remember(_ key: SeriesKey, _ value: (name: String, count: Int)) {
        series.withLock { series in
            series.removeValue(forKey: key)
            series[key] = value
            while series.count > seriesCapacity { series.removeFirst() }
        }
    }

    /// Events dropped so far because the queue was full (or the recorder had stopped).
    public var droppedEvents: Int { dropped.load(ordering: .relaxed) }

    /// Queues an event about `regarding` in a controller's typed vocabulary of reasons and
    /// actions (string enums); returns at once.
    public func record<Reason: RawRepresentable<String>, Action: RawRepresentable<String>>(
        _ regarding: Regarding, type: EventType, reason: Reason, action: Action, note: String
    ) {
        record(regarding, type: type, reason: reason.rawValue, action: action.rawValue, note: note)
    }

    /// Queues an event about `regarding`; returns at once.
    public func record(_ regarding: Regarding, type: EventType, reason: String, action: String, note: String) {
        unsent.withLock { $0.count += 1 }
        let key = SeriesKey(regarding: regarding, type: type, reason: reason, action: action, note: note.truncated(toUTF8Bytes: APILimits.eventNote))
        let result = input.yield(Pending(key: key, time: Date()))
        if case .enqueued = result { return }
        // Logged for the first drop and every 1,000th after it, not for each: an overload
        // must not also flood the log.
        let drops = dropped.wrappingAdd(1, ordering: .relaxed).newValue
        if drops == 1 || drops % 1_000 == 0 {
            let why = if case .terminated = result { "the recorder has stopped" } else { "the event queue is full" }
            logger.warning("events dropped: \(why)", metadata: [
                "dropped": "\(drops)", "reason": "\(reason)", "object": "\(regarding.namespace ?? "")/\(regarding.name)"])
        }
        sent()
    }

    /// Sends queued events until cancelled, or, after a graceful shutdown, until the queue is
    /// empty.
    public func run() async throws {
        await withGracefulShutdownHandler {
            for await event in queue {
                await send(event)
                sent()
            }
        } onGracefulShutdown: { [input] in
            input.finish()
        }
    }

    /// Returns once every event recorded so far has been sent (or dropped), or when the calling
    /// task is cancelled. For tests and for draining.
    public func flush() async {
        let gate = unsent.withLock { state -> Latch? in
            guard state.count > 0 else { return nil }
            let gate = Latch()
            state.waiting.append(gate)
            return gate
        }
        await gate?.wait()
    }

    private func sent() {
        let gates = unsent.withLock { state -> [Latch] in
            state.count -= 1
            guard state.count == 0 else { return [] }
            defer { state.waiting = [] }
            return state.waiting
        }
        for gate in gates { gate.open() }
    }

    private func send(_ pending: Pending) async {
        let key = pending.key
        let (regarding, type, reason, action) = (key.regarding, key.type, key.reason, key.action)
        let namespace = regarding.namespace ?? "default"
        let now = MicroTime(pending.time)
        if let existing = series.withLock({ $0[key] }) {
            let count = existing.count + 1
            let patch: JSONValue = ["series": ["count": .integer(Int64(count)), "lastObservedTime": .string(now.description)]]
            do {
                _ = try await client.patch(GenericObject.self, .events, namespace: namespace, name: existing.name, mergePatch: patch)
                remember(key, (existing.name, count))
                return
            } catch let error as KubernetesError where error.isNotFound {
                series.withLock { _ = $0.removeValue(forKey: key) }  // expired: start a new one
            } catch {
                logger.warning("could not update event", metadata: ["reason": "\(reason)", "error": "\(error)"])
                return
            }
        }
        // client-go's name: the object's, a dot, a random suffix; cut so it stays a valid name.
        let suffix = String(UInt64.random(in: 0...UInt64.max), radix: 16)
        var base = String(regarding.name.prefix(APILimits.objectName - 1 - suffix.count))
        while let last = base.last, !(last.isASCII && (last.isLetter || last.isNumber)) { base.removeLast() }
        let name = "\(base).\(suffix)"
        do {
            _ = try await client.create(try GenericObject(raw: event(name: name, regarding: regarding, related: nil, type: type, reason: reason,
                                                                      action: action, note: key.note, now: now)),
                                        .events, namespace: namespace)
            remember(key, (name, 1))
        } catch let error as KubernetesError where (error.isForbidden || error.isNotFound) && fallback != nil {
            // The object's namespace is being deleted or is gone.
            let fallback = self.fallback!
            let event = event(name: name, regarding: fallback, related: regarding, type: type, reason: reason, action: action,
                              note: "\(regarding.kind) \(namespace)/\(regarding.name): \(key.note)", now: now)
            do {
                _ = try await client.create(try GenericObject(raw: event), .events, namespace: fallback.namespace ?? "default")
            } catch {
                logger.warning("could not record event", metadata: ["reason": "\(reason)", "error": "\(error)"])
            }
        } catch {
            logger.warning("could not record event", metadata: ["reason": "\(reason)", "error": "\(error)"])
        }
    }

    private static func reference(_ object: Regarding) -> JSONValue {
        var reference: [String: JSONValue] = [
            "apiVersion": .string(object.apiVersion), "kind": .string(object.kind), "name": .string(object.name),
        ]
        if let namespace = object.namespace { reference["namespace"] = .string(namespace) }
        if let uid = object.uid { reference["uid"] = .string(uid) }
        return .object(reference)
    }

    private func event(name: String, regarding: Regarding, related: Regarding?, type: EventType, reason: String, action: String,
                       note: String, now: MicroTime) -> JSONValue {
        var event: [String: JSONValue] = [
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": ["name": .string(name), "namespace": .string(regarding.namespace ?? "default")],
            "eventTime": .string(now.description),
            "reportingController": .string(controller), "reportingInstance": .string(instance),
            "action": .string(action), "reason": .string(reason), "note": .string(note.truncated(toUTF8Bytes: APILimits.eventNote)), "type": .string(type.rawValue),
            "regarding": Self.reference(regarding),
        ]
        if let related { event["related"] = Self.reference(related) }
        return .object(event)
    }
}
