import Foundation

/// RFC 3339 timestamps as Kubernetes writes them: `2026-03-09T06:30:00Z` (`metav1.Time`, second
/// precision) or `2026-03-09T06:30:00.250000Z` (`metav1.MicroTime`), always UTC.
///
/// Parsing takes any number of fractional digits and numeric offsets, as the API server does
/// (`format: date-time`). The one time codec of the project: the Kubernetes types, the cron
/// schedules, the CLI and the test servers all read and write times through it.
public enum RFC3339 {
    /// `date` in UTC with a `Z` suffix, the fraction of the second dropped (as `metav1.Time` does).
    public static func format(_ date: Date) -> String {
        format(date, fractionDigits: 0)
    }

    /// `date` in UTC with a `Z` suffix and `fractionDigits` (0-9) digits of the second's
    /// fraction (6 for `metav1.MicroTime`).
    public static func format(_ date: Date, fractionDigits: Int) -> String {
        let instant = date.timeIntervalSince1970
        let seconds = Int64(instant.rounded(.down))
        let day = CivilTime.floorDiv(seconds, CivilTime.secondsPerDay)
        let secondOfDay = seconds - day * CivilTime.secondsPerDay
        let (year, month, dayOfMonth) = CivilTime.date(days: day)
        func pad(_ value: Int64, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(dayOfMonth, 2))T"
            + "\(pad(secondOfDay / 3600, 2)):\(pad(secondOfDay % 3600 / 60, 2)):\(pad(secondOfDay % 60, 2))"
            + fraction(instant - Double(seconds), digits: fractionDigits) + "Z"
    }

    private static func fraction(_ value: Double, digits: Int) -> String {
        guard digits > 0 else { return "" }
        let scale = (0..<min(digits, 9)).reduce(Int64(1)) { product, _ in product * 10 }
        // Nearest, not truncated: a Date holds about 0.2 µs of precision today, so 0.25 may be
        // stored as 0.2499998 and must still print 250000.
        let units = min(scale - 1, Int64((value * Double(scale)).rounded()))
        let text = String(units)
        return "." + String(repeating: "0", count: min(digits, 9) - text.count) + text
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`; nil when `text` is not such a timestamp
    /// or its time in UTC falls outside the years 0000 to 9999.
    public static func parse(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        var index = 0
        func number(_ width: Int) -> Int64? {
            guard index + width <= bytes.count else { return nil }
            var value: Int64 = 0
            for byte in bytes[index..<index + width] {
                guard (48...57).contains(byte) else { return nil }
                value = value * 10 + Int64(byte - 48)
            }
            index += width
            return value
        }
        func expect(_ characters: String) -> Bool {
            guard index < bytes.count, characters.utf8.contains(bytes[index]) else { return false }
            index += 1
            return true
        }
        guard let year = number(4), expect("-"), let month = number(2), expect("-"), let day = number(2),
              expect("Tt "), let hour = number(2), expect(":"), let minute = number(2), expect(":"),
              let second = number(2)
        else { return nil }
        guard (1...12).contains(month), (0...23).contains(hour), (0...59).contains(minute), (0...60).contains(second)
        else { return nil }
        let daysInMonth = CivilTime.days(year: month == 12 ? year + 1 : year, month: month == 12 ? 1 : month + 1, day: 1)
            - CivilTime.days(year: year, month: month, day: 1)
        guard (1...daysInMonth).contains(day) else { return nil }
        var fraction = 0.0
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            var scale = 0.1
            let start = index
            while index < bytes.count, (48...57).contains(bytes[index]) {
                fraction += Double(bytes[index] - 48) * scale
                scale /= 10
                index += 1
            }
            guard index > start else { return nil }
        }
        var offset: Int64 = 0
        if expect("Zz") {
            offset = 0
        } else {
            guard index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") else { return nil }
            let sign: Int64 = bytes[index] == UInt8(ascii: "-") ? -1 : 1
            index += 1
            guard let offsetHours = number(2), expect(":"), let offsetMinutes = number(2),
                  offsetHours < 24, offsetMinutes < 60
            else { return nil }
            offset = sign * (offsetHours * 3600 + offsetMinutes * 60)
        }
        guard index == bytes.count else { return nil }
        let local = CivilTime.days(year: year, month: month, day: day) * CivilTime.secondsPerDay
            + hour * 3600 + minute * 60 + second
        // In UTC the year must still have four digits (an offset can move 9999-12-31 into
        // 10000, or 0000-01-01 into year -1), so that every parsed time formats back to RFC 3339.
        // The fraction counts too: .9999999999 of the last second rounds, in a Double, to the
        // next year.
        let utc = local - offset
        let instant = TimeInterval(utc) + fraction
        guard utc >= CivilTime.days(year: 0, month: 1, day: 1) * CivilTime.secondsPerDay,
              instant < TimeInterval(CivilTime.days(year: 10_000, month: 1, day: 1) * CivilTime.secondsPerDay)
        else { return nil }
        return Date(timeIntervalSince1970: instant)
    }
}
