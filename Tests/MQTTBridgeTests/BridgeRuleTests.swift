import Ledger
import LedgerModel
import MQTTBridge
import Testing

@Suite("Bridge rules: topics to devices, payloads to readings")
struct BridgeRuleTests {
    @Test func filtersMatchAsMQTTSays() throws {
        let f = try #require(TopicFilter("sensors/+/temperature"))
        #expect(f.match("sensors/kitchen/temperature") == ["kitchen"])
        #expect(f.match("sensors/kitchen/humidity") == nil && f.match("sensors/kitchen/temperature/x") == nil)
        #expect(TopicFilter("home/#")?.match("home") == [] && TopicFilter("home/#")?.match("home/a/b") == [])
        #expect(TopicFilter("#")?.match("$SYS/broker/uptime") == nil, "wildcards do not reach $ topics")
        for bad in ["", "a/#/b", "a/b#", "a+/b"] { #expect(TopicFilter(bad) == nil, "\(bad)") }
    }

    func reading(_ rule: BridgeRule, _ topic: String, _ payload: String) -> Result<(device: String, payload: String, time: Int64?), BridgeRule.Refusal> {
        rule.submission(topic: topic, payload: Array(payload.utf8), arrival: 1_000, maxPayload: 1024).map {
            guard case let .unsigned(device, bytes, time, _, source) = $0, source == .mqtt else { return ("?", "?", nil) }
            return (device, String(decoding: bytes, as: UTF8.self), time)
        }
    }

    @Test func theSimpleRuleTakesTheDeviceFromTheWildcardAndReadsEveryFormat() throws {
        let rule = BridgeRule.simple(try #require(TopicFilter("sensors/+/temperature")))
        #expect(try reading(rule, "sensors/kitchen/temperature", "21.50").get() == ("kitchen", #"{"topic":"sensors/kitchen/temperature","value":21.50}"#, 1_000))
        #expect(try reading(rule, "sensors/porch/temperature", #"{"c":20,"topic":"mine"}"#).get().payload == #"{"c":20,"topic":"mine"}"#,
                "a JSON object with its own topic field is stored exactly as sent")
        #expect(try reading(rule, "sensors/attic/temperature", "c=19.5 state=ok").get().payload == #"{"c":19.5,"state":"ok","topic":"sensors/attic/temperature"}"#)
        #expect(try reading(rule, "sensors/attic/temperature", "on").get().payload == #"{"topic":"sensors/attic/temperature","value":"on"}"#)
        let last = BridgeRule.simple(try #require(TopicFilter("meters/#")))
        #expect(try reading(last, "meters/floor1/m-7", "5").get().device == "m-7", "no + level: the topic's last level")
    }

    @Test func aTimeFieldIsTakenFromThePayloadInSecondsOrMilliseconds() throws {
        var rule = BridgeRule(filter: try #require(TopicFilter("t/+")), device: .topicLevel(1), format: .json)
        rule.timeField = "ts"
        #expect(try reading(rule, "t/d", #"{"ts":1764000000}"#).get().time == 1_764_000_000_000)
        #expect(try reading(rule, "t/d", #"{"ts":1764000000123}"#).get().time == 1_764_000_000_123)
        #expect(throws: BridgeRule.Refusal.badTime) { try reading(rule, "t/d", #"{"ts":"yesterday"}"#).get() }
    }

    @Test func aDeviceTimeIsAsSynchronisedAsTheDeviceSays() throws {
        var rule = BridgeRule(filter: try #require(TopicFilter("t/+")), device: .topicLevel(1), format: .json)
        func quality(_ payload: String) throws -> TimeQuality? {
            guard case let .unsigned(_, _, _, q, _) = try rule.submission(topic: "t/d", payload: Array(payload.utf8), arrival: 1, maxPayload: 1024).get() else { return nil }
            return q
        }
        rule.timeField = "time"
        #expect(try quality(#"{"time":1764000000000,"timeSynced":false}"#) == .unsynced, "a board without a real-time clock before NTP ran")
        #expect(try quality(#"{"time":1764000000000,"timeSynced":true}"#) == .synced)
        #expect(try quality(#"{"time":1764000000000}"#) == .synced, "a device that says nothing is trusted")
    }

    @Test func whatCannotBeAReadingIsRefusedWithAReason() throws {
        let rule = BridgeRule(filter: try #require(TopicFilter("s/+/v")), device: .topicLevel(1), format: .json)
        #expect(throws: BridgeRule.Refusal.badDevice) { try reading(rule, "s/a b/v", "{}").get() }
        #expect(throws: BridgeRule.Refusal.badPayload) { try reading(rule, "s/d/v", "[1,2]").get() }
        #expect(throws: BridgeRule.Refusal.badPayload) { try reading(rule, "s/d/v", String(repeating: "[", count: 40) + String(repeating: "]", count: 40)).get() }
        #expect(throws: BridgeRule.Refusal.noRule) { try reading(rule, "other", "{}").get() }
        #expect(throws: BridgeRule.Refusal.tooLarge) { try reading(rule, "s/d/v", "{\"x\":\"" + String(repeating: "x", count: 2000) + "\"}").get() }
        let binary = rule.submission(topic: "s/d/v", payload: [0xFF, 0xFE, 0x00], arrival: 0, maxPayload: 1024)
        #expect(binary.map { _ in 0 } == .failure(.notUTF8))
    }
}

extension BridgeRuleTests {
    @Test func withAutomaticFormatWhatLooksLikeJSONMustBeAnObject() throws {
        let rule = BridgeRule.simple(try #require(TopicFilter("s/+")))
        #expect(throws: BridgeRule.Refusal.badPayload) { try reading(rule, "s/d", "[1,2]").get() }
        #expect(throws: BridgeRule.Refusal.badPayload) { try reading(rule, "s/d", " {\"a\":").get() }
    }

    @Test func binaryThatHappensToBeUTF8IsNotTakenForText() throws {
        let rule = BridgeRule.simple(try #require(TopicFilter("s/+")))
        for format in [BridgeRule.PayloadFormat.auto, .value, .keyValue] {
            var r = rule
            r.format = format
            let binary = r.submission(topic: "s/d", payload: [0x00, 0x01, 0x02, 0x7B, 0x00, 0x7D], arrival: 0, maxPayload: 1024)
            #expect(binary.map { _ in 0 } == .failure(.badPayload), "\(format)")
            let bell = r.submission(topic: "s/d", payload: Array("a=1\u{07}".utf8), arrival: 0, maxPayload: 1024)
            #expect(bell.map { _ in 0 } == .failure(.badPayload), "\(format)")
        }
        // Tabs and line breaks are text.
        #expect(try reading(rule, "s/d", "a=1\tb=2\n").get().payload.contains("\"b\":2"))
    }
}
