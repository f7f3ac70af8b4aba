/// A Web-of-Things thing id: `[A-Za-z0-9-]{1,64}`.
public enum DeviceID {
    public static let maxLength = 64

    /// nil when `id` is valid, otherwise the reason it is not.
    public static func problem(with id: String) -> String? {
        let utf8 = id.utf8
        if utf8.isEmpty { return "device id is empty" }
        if utf8.count > maxLength { return "device id is \(utf8.count) characters, at most \(maxLength) allowed" }
        // A plain counted loop: `enumerated()` here cost a generic-metadata lookup per character,
        // and every stored reading decoded (start's tail check, queries) checks its device id.
        var i = 0
        for c in utf8 {
            let ok = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2D
            if !ok { return "device id has a character outside [A-Za-z0-9-] at position \(i)" }
            i += 1
        }
        return nil
    }

    public static func isValid(_ id: String) -> Bool { problem(with: id) == nil }
}
