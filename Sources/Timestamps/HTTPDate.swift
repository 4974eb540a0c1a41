import Foundation

/// HTTP dates (RFC 9110 IMF-fixdate, `Fri, 27 Nov 2026 12:00:00 GMT`), as S3 sends them in
/// `Last-Modified`: beside ``RFC3339``, the other time format the project reads.
public enum HTTPDate {
    public static func parse(_ text: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter.date(from: text)
    }
}
