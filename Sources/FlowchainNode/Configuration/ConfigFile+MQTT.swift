import Ledger
import MQTTBridge

extension OneOrMany<ConfigFile.MQTTSection> {
    /// One bridge per broker; errors name the key at fault (`mqtt[1].rules[0].topic`).
    public func bridgeConfigurations() throws -> [BridgeConfiguration] {
        let bridges = try items.enumerated().map { i, section in try section.bridgeConfiguration(at: isList ? "mqtt[\(i)]" : "mqtt") }
        var names = Set<String>()
        for (i, b) in bridges.enumerated() where !names.insert(b.name).inserted {
            throw NodeError.configuration("mqtt[\(i)].name: '\(b.name)' names two brokers (give each its own 'name')")
        }
        return bridges
    }
}

extension ConfigFile.MQTTSection {
    /// The bridge these settings describe; errors name the key at fault, under `at`.
    public func bridgeConfiguration(at mqtt: String = "mqtt") throws -> BridgeConfiguration {
        var broker: MQTTConfiguration
        do { broker = try BridgeConfiguration.broker(url: self.broker, clientID: clientId ?? "") } catch {
            throw NodeError.configuration("\(mqtt).broker: \(error)")
        }
        if let username { broker.username = username }
        if let password { broker.password = password }
        if ca != nil || certificate != nil || key != nil {
            guard let ca = ca ?? broker.tls?.caFile else { throw NodeError.configuration("\(mqtt): a client certificate needs 'ca' (or an mqtts:// broker)") }
            broker.tls = .init(caFile: ca, certificateFile: certificate, keyFile: key)
        }
        switch protocolVersion {
        case nil, "3.1.1": broker.protocolVersion = .v311
        case "5": broker.protocolVersion = .v5
        case let other?: throw NodeError.configuration("\(mqtt).protocolVersion: '\(other)' is not \"3.1.1\" or \"5\"")
        }
        if let keepalive {
            guard (5...3600).contains(keepalive) else { throw NodeError.configuration("\(mqtt).keepalive: \(keepalive) is not 5…3600 seconds") }
            broker.keepalive = Int32(keepalive)
        }
        guard !rules.isEmpty else { throw NodeError.configuration("\(mqtt).rules: give at least one rule (a topic filter)") }
        var out: [BridgeRule] = []
        for (i, r) in rules.enumerated() {
            let at = "\(mqtt).rules[\(i)]"
            guard let filter = TopicFilter(r.topic) else { throw NodeError.configuration("\(at).topic: '\(r.topic)' is not an MQTT topic filter") }
            var rule = BridgeRule.simple(filter)
            switch (r.device, r.deviceLevel) {
            case (_?, _?): throw NodeError.configuration("\(at): give 'device' or 'deviceLevel', not both")
            case let (id?, nil):
                if let why = DeviceID.problem(with: id) { throw NodeError.configuration("\(at).device: \(why)") }
                rule.device = .fixed(id)
            case let (nil, level?): rule.device = .topicLevel(level)
            case (nil, nil): break
            }
            if let format = r.format {
                guard let f = BridgeRule.PayloadFormat(rawValue: format) else {
                    throw NodeError.configuration("\(at).format: '\(format)' is not one of \(BridgeRule.PayloadFormat.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                rule.format = f
            }
            if let field = r.field { rule.valueField = field }
            rule.timeField = r.timeField
            rule.seqField = r.seqField
            if let topicField = r.topicField { rule.topicField = topicField.isEmpty ? nil : topicField }
            if let qos = r.qos {
                guard (0...2).contains(qos) else { throw NodeError.configuration("\(at).qos: \(qos) is not 0, 1 or 2") }
                rule.qos = Int32(qos)
            }
            out.append(rule)
        }
        var bridge = BridgeConfiguration(broker: broker, rules: out)
        if let name {
            guard !name.isEmpty, !name.contains("/") else { throw NodeError.configuration("\(mqtt).name: '\(name)' must be non-empty, without '/'") }
            bridge.name = name
        }
        if publish == true || prefix != nil {
            bridge.outbound = try Self.outbound(prefix: prefix, key: "\(mqtt).prefix")
        }
        if let deadLetter { bridge.deadLetter = try Self.topicPrefix(deadLetter, key: "\(mqtt).deadLetter") }
        return bridge
    }

    /// Outbound publishing under `prefix` (default `flowchain/{node}`); a prefix may not hold wildcards.
    public static func outbound(prefix: String?, key: String = "mqtt.prefix") throws -> OutboundConfiguration {
        OutboundConfiguration(prefix: try topicPrefix(prefix ?? "flowchain/{node}", key: key))
    }

    /// A topic prefix the node publishes under: no wildcards, no trailing '/'.
    public static func topicPrefix(_ p: String, key: String) throws -> String {
        guard !p.isEmpty, !p.contains("+"), !p.contains("#"), !p.hasSuffix("/"), !p.hasPrefix("$") else {
            throw NodeError.configuration("\(key): '\(p)' must be a topic without wildcards, a leading '$' or a trailing '/'")
        }
        return p
    }
}
