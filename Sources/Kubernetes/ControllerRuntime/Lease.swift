import KubernetesClient

/// `coordination.k8s.io/v1` Lease: the record leader election competes for.
public struct Lease: KubernetesObject, Equatable {
    public static let resourceType = ResourceType.leases

    public var apiVersion = "coordination.k8s.io/v1"
    public var kind = "Lease"
    public var metadata: ObjectMeta
    public var spec: Spec?

    public struct Spec: Codable, Sendable, Equatable {
        public var holderIdentity: String?
        public var leaseDurationSeconds: Int?
        public var acquireTime: MicroTime?
        public var renewTime: MicroTime?
        public var leaseTransitions: Int?

        public init(holderIdentity: String? = nil, leaseDurationSeconds: Int? = nil, acquireTime: MicroTime? = nil, renewTime: MicroTime? = nil, leaseTransitions: Int? = nil) {
            self.holderIdentity = holderIdentity
            self.leaseDurationSeconds = leaseDurationSeconds
            self.acquireTime = acquireTime
            self.renewTime = renewTime
            self.leaseTransitions = leaseTransitions
        }
    }

    public init(metadata: ObjectMeta, spec: Spec?) {
        self.metadata = metadata
        self.spec = spec
    }
}
