import Foundation

/// Kubernetes `metav1.Condition`: one observation about a resource (`Ready`, `Failed`, ...).
public struct Condition: Codable, Sendable, Equatable {
    public var type: String
    public var status: ConditionStatus
    public var reason: String
    public var message: String
    public var lastTransitionTime: KubeTime
    public var observedGeneration: Int64?

    public init(type: String, status: ConditionStatus, reason: String, message: String, lastTransitionTime: KubeTime, observedGeneration: Int64? = nil) {
        self.type = type
        self.status = status
        self.reason = reason
        self.message = message
        self.lastTransitionTime = lastTransitionTime
        self.observedGeneration = observedGeneration
    }
}

/// `True`, `False` or `Unknown`, as the Kubernetes API conventions spell them.
public enum ConditionStatus: String, Codable, Sendable, CaseIterable {
    case `true` = "True"
    case `false` = "False"
    case unknown = "Unknown"
}

extension Array where Element == Condition {
    /// The condition of `type`, if present.
    public subscript(type type: String) -> Condition? {
        first { $0.type == type }
    }

    /// Whether the condition of `type` is present with status True.
    public func isTrue(_ type: String) -> Bool {
        self[type: type]?.status == .true
    }

    /// Sets a condition with apimachinery's `meta.SetStatusCondition` rule: `lastTransitionTime`
    /// becomes `now` when the condition is new or its status changes, and is kept otherwise;
    /// reason, message and observedGeneration are always updated. Returns whether anything changed.
    /// A message longer than the API's limit is cut to it (``APILimits/conditionMessage``).
    @discardableResult
    public mutating func set(
        type: String, status: ConditionStatus, reason: String, message: String,
        observedGeneration: Int64? = nil, now: Date
    ) -> Bool {
        let message = message.truncated(toScalars: APILimits.conditionMessage)
        guard let index = firstIndex(where: { $0.type == type }) else {
            append(Condition(type: type, status: status, reason: reason, message: message,
                             lastTransitionTime: KubeTime(now), observedGeneration: observedGeneration))
            return true
        }
        let before = self[index]
        if before.status != status {
            self[index].status = status
            self[index].lastTransitionTime = KubeTime(now)
        }
        self[index].reason = reason
        self[index].message = message
        self[index].observedGeneration = observedGeneration
        return self[index] != before
    }

    /// Removes the condition of `type`; returns whether one was there.
    @discardableResult
    public mutating func remove(type: String) -> Bool {
        let count = self.count
        removeAll { $0.type == type }
        return self.count != count
    }
}

extension Array where Element == Condition {
    // The same, for a controller's typed vocabulary of condition types and reasons (string
    // enums): the wire stays a string, the code cannot misspell one.

    public subscript<Type: RawRepresentable<String>>(type type: Type) -> Condition? { self[type: type.rawValue] }

    public func isTrue<Type: RawRepresentable<String>>(_ type: Type) -> Bool { isTrue(type.rawValue) }

    @discardableResult
    public mutating func set<Type: RawRepresentable<String>, Reason: RawRepresentable<String>>(
        type: Type, status: ConditionStatus, reason: Reason, message: String, observedGeneration: Int64? = nil, now: Date
    ) -> Bool {
        set(type: type.rawValue, status: status, reason: reason.rawValue, message: message, observedGeneration: observedGeneration, now: now)
    }

    @discardableResult
    public mutating func remove<Type: RawRepresentable<String>>(type: Type) -> Bool { remove(type: type.rawValue) }
}
