/// An MQTT topic filter (`sensors/+/temperature`, `home/#`) and the topics it matches (MQTT 3.1.1
/// §4.7): `+` is exactly one level, `#` (last) is any number of levels, including none.
public struct TopicFilter: Sendable, Equatable, CustomStringConvertible {
    public let text: String
    let levels: [Substring]

    /// nil when `text` is not a valid filter (an empty one, `#` not last, a wildcard sharing a level).
    public init?(_ text: String) {
        let levels = text.split(separator: "/", omittingEmptySubsequences: false)
        guard !text.isEmpty else { return nil }
        for (i, level) in levels.enumerated() {
            if level.contains("#") && (level != "#" || i != levels.count - 1) { return nil }
            if level.contains("+") && level != "+" { return nil }
        }
        self.text = text
        self.levels = levels
    }

    public var description: String { text }

    /// The levels of `topic` matched by `+` wildcards, in order; nil when the filter does not match.
    public func match(_ topic: String) -> [Substring]? {
        let parts = topic.split(separator: "/", omittingEmptySubsequences: false)
        // Topics starting with '$' (broker internals) match only filters that name them.
        if topic.hasPrefix("$"), let first = levels.first, first == "+" || first == "#" { return nil }
        var wild: [Substring] = []
        for (i, level) in levels.enumerated() {
            if level == "#" { return wild }
            guard i < parts.count else { return nil }
            if level == "+" { wild.append(parts[i]) } else if level != parts[i] { return nil }
        }
        return parts.count == levels.count ? wild : nil
    }
}
