/// Why a cron expression or its time zone was rejected.
///
/// Every case names what is wrong (the field and the offending text, or the zone), because the
/// message ends up on a schedule's `Failed` condition and is all the user sees.
public enum CronError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The expression is empty or only white space.
    case empty
    /// The expression does not have exactly five fields.
    case wrongFieldCount(found: Int, expression: String)
    /// One field is malformed; `reason` says how.
    case invalidField(field: CronField, value: String, reason: String)
    /// An `@` descriptor that is not one of the supported ones.
    case unknownDescriptor(String)
    /// `@every` followed by something that is not a Go duration.
    case invalidInterval(expression: String, reason: String)
    /// A `CRON_TZ=`/`TZ=` prefix without a zone or without an expression after it.
    case malformedTimeZonePrefix(String)
    /// The zone is not an IANA time zone name known to this system.
    case invalidTimeZone(String)
    /// The expression carries a `CRON_TZ=`/`TZ=` prefix and a separate time zone was also given.
    case conflictingTimeZones(prefix: String, timeZone: String)

    public var description: String {
        switch self {
        case .empty:
            return "schedule is empty; expected five fields: minute hour day-of-month month day-of-week"
        case .wrongFieldCount(let found, let expression):
            return "schedule \"\(expression)\" has \(found) field\(found == 1 ? "" : "s"); expected five: minute hour day-of-month month day-of-week"
        case .invalidField(let field, let value, let reason):
            return "\(field) field \"\(value)\": \(reason)"
        case .unknownDescriptor(let descriptor):
            return "unknown descriptor \"\(descriptor)\"; supported: @yearly @annually @monthly @weekly @daily @midnight @hourly @every <duration>"
        case .invalidInterval(let expression, let reason):
            return "schedule \"\(expression)\": \(reason)"
        case .malformedTimeZonePrefix(let prefix):
            return "time zone prefix \"\(prefix)\" must be CRON_TZ=<zone> or TZ=<zone> followed by a space and the expression"
        case .invalidTimeZone(let zone):
            return "unknown time zone \"\(zone)\"; expected an IANA name such as UTC or Europe/Berlin"
        case .conflictingTimeZones(let prefix, let timeZone):
            return "schedule carries time zone prefix \"\(prefix)\" and timeZone is \"\(timeZone)\"; set only one of them"
        }
    }
}
