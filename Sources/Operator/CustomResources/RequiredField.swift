import KubernetesCore
/// A value that has an "empty" form, used for API fields that are required but may be missing
/// from what a user wrote.
public protocol EmptyRepresentable {
    static var empty: Self { get }
}

extension String: EmptyRepresentable {
    public static var empty: String { "" }
}

/// Marks a field the API requires. A missing field decodes as its empty form instead of failing
/// the whole decode, so ``validate()`` can report every missing field with its path at once
/// (`spec.backupTemplate.spec.backupStorage.s3.bucket: required`) rather than the first one a
/// decoder trips over.
@propertyWrapper
public struct RequiredField<Value: Codable & Sendable & Equatable & EmptyRepresentable>: Codable, Sendable, Equatable {
    public var wrappedValue: Value

    public init(wrappedValue: Value) {
        self.wrappedValue = wrappedValue
    }

    public init(from decoder: any Decoder) throws {
        wrappedValue = try Value(from: decoder)
    }

    public func encode(to encoder: any Encoder) throws {
        try wrappedValue.encode(to: encoder)
    }
}

extension KeyedDecodingContainer {
    /// Picked by synthesized `init(from:)` for `@RequiredField` properties: missing or null
    /// decodes as empty.
    public func decode<Value>(_ type: RequiredField<Value>.Type, forKey key: Key) throws -> RequiredField<Value> {
        try decodeIfPresent(type, forKey: key) ?? RequiredField(wrappedValue: .empty)
    }
}
