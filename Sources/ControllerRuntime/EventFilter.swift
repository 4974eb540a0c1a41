import KubernetesClient

/// Which informer events a controller turns into reconciles (controller-runtime's predicates).
/// Additions and deletions always pass; the filter decides about updates.
///
/// Without one, every write a reconciler makes to its own object (status, finalizers) would
/// queue that object again for nothing.
public struct EventFilter<Object: KubernetesObject>: Sendable {
    /// Whether an update from `old` to `new` should reconcile.
    public let passesUpdate: @Sendable (_ old: Object, _ new: Object) -> Bool

    public init(passesUpdate: @escaping @Sendable (_ old: Object, _ new: Object) -> Bool) {
        self.passesUpdate = passesUpdate
    }

    public func passes(_ event: InformerEvent<Object>) -> Bool {
        if case .updated(let old, let new) = event { return passesUpdate(old, new) }
        return true
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
        EventFilter { old, new in passesUpdate(old, new) || other.passesUpdate(old, new) }
    }
}
