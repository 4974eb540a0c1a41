/// A string enum of the API that keeps a value it does not know instead of refusing the whole
/// object: an object written by a newer version of the CRD, or one that skipped its schema,
/// still decodes, round-trips byte for byte, and reaches validation, which names the field and
/// the supported values (``unsupportedValue(at:)``). Code `switch`es over the known cases and
/// `.unknown`, so a new case is a compile error wherever it matters. `allCases` lists the known
/// values only (the CRD's `enum`).
public protocol OpenEnum: RawRepresentable<String>, CaseIterable, Codable, Sendable, Hashable, EmptyRepresentable, CustomStringConvertible
where AllCases == [Self] {
    /// A value that is none of ``allCases``.
    static func unknown(_ value: String) -> Self
}

extension OpenEnum {
    public init(rawValue: String) { self = Self.value(rawValue) }

    public init(from decoder: any Decoder) throws {
        self = Self.value(try decoder.singleValueContainer().decode(String.self))
    }

    private static func value(_ rawValue: String) -> Self {
        allCases.first { $0.rawValue == rawValue } ?? .unknown(rawValue)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    /// Empty: not a value at all (a required field left out).
    public static var empty: Self { .unknown("") }

    /// The value as the API spells it.
    public var description: String { rawValue }

    public var isKnown: Bool { Self.allCases.contains(self) }

    /// The error validation reports at `path` for a value that is not known; nil for a known
    /// one. An empty value of a `required` field (``empty``: the field was left out) is
    /// "required"; of an optional field, an unsupported value like any other.
    public func unsupportedValue(at path: String, required: Bool = false) -> FieldError? {
        guard !isKnown else { return nil }
        if required && rawValue.isEmpty { return FieldError(path, "required") }
        return FieldError(path, "unsupported value \"\(rawValue.prefix(100))\"; supported: \(Self.allCases.map(\.rawValue).joined(separator: ", "))")
    }
}
