import KubernetesClient

/// A failure the test server answers with a `Status`, shaped as the real API server shapes it.
struct APIError: Error, Sendable {
    var code: Int
    var reason: String
    var message: String
    var details: StatusDetails?

    var status: Status {
        Status(message: message, reason: reason, details: details, code: code)
    }

    static func notFound(_ resource: ServedResource, _ name: String) -> APIError {
        APIError(code: 404, reason: "NotFound", message: "\(resource.key) \"\(name)\" not found",
                 details: StatusDetails(name: name, group: resource.type.group, kind: resource.type.plural))
    }

    static func alreadyExists(_ resource: ServedResource, _ name: String) -> APIError {
        APIError(code: 409, reason: "AlreadyExists", message: "\(resource.key) \"\(name)\" already exists",
                 details: StatusDetails(name: name, group: resource.type.group, kind: resource.type.plural))
    }

    static func conflict(_ resource: ServedResource, _ name: String, _ why: String = "the object has been modified; please apply your changes to the latest version and try again") -> APIError {
        APIError(code: 409, reason: "Conflict", message: "Operation cannot be fulfilled on \(resource.key) \"\(name)\": \(why)",
                 details: StatusDetails(name: name, group: resource.type.group, kind: resource.type.plural))
    }

    static func invalid(_ resource: ServedResource, _ name: String, _ causes: [String]) -> APIError {
        let kind = resource.type.group.isEmpty ? resource.type.kind : "\(resource.type.kind).\(resource.type.group)"
        return APIError(
            code: 422, reason: "Invalid",
            message: "\(kind) \"\(name)\" is invalid: " + (causes.count == 1 ? causes[0] : "[" + causes.joined(separator: ", ") + "]"),
            details: StatusDetails(name: name, group: resource.type.group, kind: resource.type.kind,
                                   causes: causes.map { cause in
                                       let parts = cause.split(separator: ": ", maxSplits: 1).map(String.init)
                                       return StatusCause(reason: "FieldValueInvalid", message: parts.count == 2 ? parts[1] : cause, field: parts.count == 2 ? parts[0] : nil)
                                   }))
    }

    static func badRequest(_ message: String) -> APIError {
        APIError(code: 400, reason: "BadRequest", message: message)
    }

    static func gone(_ message: String) -> APIError {
        APIError(code: 410, reason: "Expired", message: message)
    }
}
