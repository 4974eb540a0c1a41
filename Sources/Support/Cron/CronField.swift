/// The five fields of a standard cron expression, in order.
///
/// Errors name the field a problem is in, so a user can find it in their expression.
public enum CronField: Int, CaseIterable, Sendable, CustomStringConvertible {
    case minute, hour, dayOfMonth, month, dayOfWeek

    public var description: String {
        switch self {
        case .minute: "minute"
        case .hour: "hour"
        case .dayOfMonth: "day-of-month"
        case .month: "month"
        case .dayOfWeek: "day-of-week"
        }
    }

    /// Smallest and largest value the field accepts (day-of-week is 0-6: 7 is an error, as in robfig/cron and Kubernetes).
    var bounds: ClosedRange<Int> {
        switch self {
        case .minute: 0...59
        case .hour: 0...23
        case .dayOfMonth: 1...31
        case .month: 1...12
        case .dayOfWeek: 0...6
        }
    }

    /// Names accepted in place of numbers (case-insensitive), mapped to their values.
    var names: [String: Int] {
        switch self {
        case .month:
            ["jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
             "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12]
        case .dayOfWeek:
            ["sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6]
        default:
            [:]
        }
    }
}
