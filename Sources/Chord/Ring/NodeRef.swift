/// A Chord peer as the protocol knows it: its ring identifier and how the transport reaches it.
/// The identifier is SHA-1 of the peer's public key; the transport authenticates that key, so a
/// message's claimed sender can be checked against who actually sent it.
public struct NodeRef: Hashable, Sendable, CustomStringConvertible {
    public let id: ChordID
    /// Transport address (`ws://host:port` for the peer transport; empty in the simulator,
    /// which routes by id).
    public let address: String

    public init(id: ChordID, address: String = "") {
        self.id = id
        self.address = address
    }

    /// The reference of the peer holding `publicKey`: its id is SHA-1 of the key.
    public init(publicKey: [UInt8], address: String = "") {
        self.init(id: ChordID.hashing(publicKey), address: address)
    }

    public var description: String { address.isEmpty ? id.description : "\(id)@\(address)" }
}

/// A range of keys on the ring, (lower, upper]: what a node owns is (predecessor, self].
public struct RingRange: Hashable, Sendable, CustomStringConvertible {
    public let lower: ChordID
    public let upper: ChordID

    public init(after lower: ChordID, upTo upper: ChordID) {
        self.lower = lower
        self.upper = upper
    }

    public func contains(_ key: ChordID) -> Bool { key.isBetween(lower, upTo: upper) }
    public var description: String { "(\(lower), \(upper)]" }
}
