/// Proleptic Gregorian calendar arithmetic on "civil seconds": a wall-clock reading counted as
/// seconds since 1970-01-01T00:00:00 of that same wall clock, with no time zone attached.
///
/// Cron matching happens on wall-clock readings, and RFC 3339 timestamps are written in them.
/// Pure integer arithmetic (Howard Hinnant's days/civil algorithms), so
/// computing a next run costs nanoseconds per step and no calendar objects.
public enum CivilTime {
    public static let secondsPerDay: Int64 = 86_400

    /// Days since 1970-01-01 of the given date.
    public static func days(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The date of a day counted since 1970-01-01.
    public static func date(days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// Day of the week, 0 = Sunday.
    public static func weekday(days: Int64) -> Int64 {
        let w = (days + 4) % 7  // 1970-01-01 was a Thursday
        return w >= 0 ? w : w + 7
    }

    public static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }

    /// The smallest whole minute that is `>= seconds` (or `> seconds` when `strictly`).
    public static func minute(atOrAfter seconds: Int64, strictly: Bool) -> Int64 {
        let floor = floorDiv(seconds, 60) * 60
        if floor == seconds { return strictly ? seconds + 60 : seconds }
        return floor + 60
    }
}
