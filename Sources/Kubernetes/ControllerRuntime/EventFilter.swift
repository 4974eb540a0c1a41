import KubernetesClient

/// Which informer events a controller turns into reconciles (controller-runtime's predicates).
/// Deletions always pass; the filter decides about updates and, when it says so, additions.
///
/// Without one, every write a reconciler makes to its own object (status, finalizers) would
/// queue that object again for nothing.
public struct EventFilter<Object: KubernetesObject>: Sendable {
    /// Whether an update from `old` to `new` should reconcile.
    public let passesUpdate: @Sendable (_ old: Object, _ new: Object) -> Bool
    /// Whether an addition (a creation, or an object the informer's list found) should
    /// reconcile; every one does unless the filter says otherwise.
    public let passesAddition: @Sendable (_ object: Object) -> Bool

    public init(passesAddition: @escaping @Sendable (_ object: Object) -> Bool = { _ in true },
                passesUpdate: @escaping @Sendable (_ old: Object, _ new: Object) -> Bool) {
        self.passesAddition = passesAddition
        self.passesUpdate = passesUpdate
    }

    public func passes(_ event: InformerEvent<Object>) -> Bool {
        switch event {
        case .added(let object): passesAddition(object)
        case .updated(let old, let new): passesUpdate(old, new)
        case .deleted: true
        }
    }

    /// Every event.
    public static var all: EventFilter { EventFilter { _, _ in true } }

    /// Updates that changed what the object's owner asked for: `metadata.generation` (the
    /// spec), labels, annotations, or the start of deletion. Status and finalizer writes pass
    /// only together with one of these. controller-runtime's `GenerationChangedPredicate` or
    /// `AnnotationChangedPredicate` or `LabelChangedPredicate`, plus deletion, which a custom
    /// resource's generation may not mark.
    public static var specOrMetadataChanged: EventFilter {
        EventFilter { old, new in
            old.metadata.generation != new.metadata.generation
                || old.metadata.labels != new.metadata.labels
                || old.metadata.annotations != new.metadata.annotations
                || (old.metadata.deletionTimestamp == nil) != (new.metadata.deletionTimestamp == nil)
        }
    }

    /// Either filter passes.
    public func or(_ other: EventFilter) -> EventFilter {
        EventFilter(passesAddition: { passesAddition($0) || other.passesAddition($0) },
                    passesUpdate: { old, new in passesUpdate(old, new) || other.passesUpdate(old, new) })
    }
}
