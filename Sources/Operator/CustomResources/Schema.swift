import KubernetesCore
/// Builders for OpenAPI v3 schemas (the structural subset Kubernetes accepts), so the CRDs are
/// written as Swift next to the types they describe. Every builder takes a description first:
/// `kubectl explain` shows it, and a field without one does not compile.
enum Schema {
    static func string(
        _ description: String, minLength: Int? = nil, enumValues: [String]? = nil, defaultValue: String? = nil,
        format: String? = nil, pattern: String? = nil, maxLength: Int? = nil
    ) -> JSONValue {
        var schema: [String: JSONValue] = ["type": .string("string"), "description": .string(description)]
        if let minLength { schema["minLength"] = .integer(Int64(minLength)) }
        if let maxLength { schema["maxLength"] = .integer(Int64(maxLength)) }
        if let enumValues { schema["enum"] = .array(enumValues.map(JSONValue.string)) }
        if let defaultValue { schema["default"] = .string(defaultValue) }
        if let format { schema["format"] = .string(format) }
        if let pattern { schema["pattern"] = .string(pattern) }
        return .object(schema)
    }

    static func integer(
        _ description: String, minimum: Int? = nil, maximum: Int? = nil, defaultValue: Int? = nil, format: String = "int64"
    ) -> JSONValue {
        var schema: [String: JSONValue] = [
            "type": .string("integer"), "format": .string(format), "description": .string(description),
        ]
        if let minimum { schema["minimum"] = .integer(Int64(minimum)) }
        if let maximum { schema["maximum"] = .integer(Int64(maximum)) }
        if let defaultValue { schema["default"] = .integer(Int64(defaultValue)) }
        return .object(schema)
    }

    static func boolean(_ description: String, defaultValue: Bool? = nil) -> JSONValue {
        var schema: [String: JSONValue] = ["type": .string("boolean"), "description": .string(description)]
        if let defaultValue { schema["default"] = .bool(defaultValue) }
        return .object(schema)
    }

    static func dateTime(_ description: String) -> JSONValue {
        string(description, format: "date-time")
    }

    static func object(
        _ description: String, required: [String] = [], _ properties: [String: JSONValue]
    ) -> JSONValue {
        var schema: [String: JSONValue] = [
            "type": .string("object"), "description": .string(description), "properties": .object(properties),
        ]
        if !required.isEmpty { schema["required"] = .array(required.sorted().map(JSONValue.string)) }
        return .object(schema)
    }

    static func array(
        _ description: String, items: JSONValue, listType: String? = nil, mapKeys: [String]? = nil
    ) -> JSONValue {
        var schema: [String: JSONValue] = [
            "type": .string("array"), "description": .string(description), "items": items,
        ]
        if let listType { schema["x-kubernetes-list-type"] = .string(listType) }
        if let mapKeys { schema["x-kubernetes-list-map-keys"] = .array(mapKeys.map(JSONValue.string)) }
        return .object(schema)
    }

    /// `corev1.SecretKeySelector`-shaped reference to a Secret in the same namespace.
    static func secretKeySelector(_ description: String) -> JSONValue {
        object(description, required: ["name", "key"], [
            "name": string("Name of the Secret, in the same namespace as this resource.", minLength: 1),
            "key": string("Key within the Secret's data.", minLength: 1),
        ])
    }

    /// `metav1.Condition`, as apimachinery's generated schema describes it.
    static let conditions = array(
        "Observations of the resource's state; each type appears at most once.",
        items: object(
            "One observation of the resource's state (metav1.Condition).",
            required: ["type", "status", "reason", "message", "lastTransitionTime"],
            [
                "type": string("Kind of condition, in CamelCase (Ready, Failed, Progressing).", minLength: 1, maxLength: 316),
                "status": string("Whether the condition holds.", enumValues: ConditionStatus.allCases.map(\.rawValue)),
                "reason": string("Machine-readable CamelCase reason for the last transition.", minLength: 1, maxLength: 1024),
                "message": string("Human-readable details about the last transition.", maxLength: 32768),
                "lastTransitionTime": dateTime("When the status last changed."),
                "observedGeneration": integer("The metadata.generation the condition was set for.", minimum: 0),
            ]),
        listType: "map", mapKeys: ["type"])
}
