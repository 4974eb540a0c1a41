import Foundation

/// HTTP dates (RFC 9110 IMF-fixdate, `Fri, 27 Nov 2026 12:00:00 GMT`), as S3 sends them in
/// `Last-Modified`: beside ``RFC3339``, the other time format the project reads. Parsed by
/// hand, strictly (29 bytes, English names, GMT): Foundation's `DateFormatter` leaked memory on
/// some inputs under the fuzzer and ran at a tenth of the speed.
public enum HTTPDate {
    private static let weekdays = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    public static func parse(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        guard bytes.count == 29 else { return nil }
        func word(_ start: Int) -> String { String(decoding: bytes[start..<start + 3], as: UTF8.self) }
        func number(_ start: Int, _ width: Int) -> Int64? {
            var value: Int64 = 0
            for byte in bytes[start..<start + width] {
                guard (48...57).contains(byte) else { return nil }
                value = value * 10 + Int64(byte - 48)
            }
            return value
        }
        func byte(_ index: Int, is character: Character) -> Bool { bytes[index] == character.asciiValue }
        guard weekdays.contains(word(0)), byte(3, is: ","), byte(4, is: " "), let day = number(5, 2), byte(7, is: " "),
              let monthIndex = months.firstIndex(of: word(8)), byte(11, is: " "), let year = number(12, 4), byte(16, is: " "),
              let hour = number(17, 2), byte(19, is: ":"), let minute = number(20, 2), byte(22, is: ":"), let second = number(23, 2),
              word(25) == " GM", byte(28, is: "T")
        else { return nil }
        let month = Int64(monthIndex + 1)
        let daysInMonth = CivilTime.days(year: month == 12 ? year + 1 : year, month: month == 12 ? 1 : month + 1, day: 1)
            - CivilTime.days(year: year, month: month, day: 1)
        guard (1...daysInMonth).contains(day), (0...23).contains(hour), (0...59).contains(minute), (0...60).contains(second) else { return nil }
        let seconds = CivilTime.days(year: year, month: month, day: day) * CivilTime.secondsPerDay + hour * 3600 + minute * 60 + second
        return Date(timeIntervalSince1970: TimeInterval(seconds))
    }
}
