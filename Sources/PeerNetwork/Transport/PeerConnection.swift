import Chord
import FlowchainCrypto
import Foundation
import Ledger
import Logging
import Synchronization

/// One authenticated connection to a peer: requests both ways, each paired with its response by
/// id, and Chord envelopes. Bounded in every direction: at most `maxQueued` frames wait to be
/// sent (beyond that, sends fail at once: a slow peer cannot grow this node's memory), at most
/// `maxInFlight` of the peer's requests run at once (beyond that the reader stops reading, and
/// TCP pushes back on the peer), frames are at most `PeerFrame.maxBytes`.
public final class PeerConnection: Sendable {
    public let peer: PeerHello
    /// Whether this node opened the connection.
    public let initiated: Bool
    public let opened = Date()
    let channel: PeerChannel
    let logger: Logger
    let maxQueued: Int
    let maxInFlight: Int

    typealias Outcome = Result<(PeerStatus, [UInt8]), PeerRequestError>
    /// A request sent and not yet answered: nobody waits yet, someone waits, or the answer came
    /// before anyone waited.
    private enum Slot { case expecting, waiting(CheckedContinuation<Outcome, Never>), done(Outcome) }

    private struct State {
        var nextID: UInt64 = 1
        var pending: [UInt64: Slot] = [:]
        var queued = 0
        var closed = false
    }
    private let state = Mutex(State())
    private let outbox: AsyncStream<[UInt8]>
    private let outboxInput: AsyncStream<[UInt8]>.Continuation

    public var id: ChordID { peer.id }
    public var ref: NodeRef { NodeRef(id: peer.id, address: peer.address) }
    /// How the peer is named in logs: its address, else its key.
    public var name: String { peer.address.isEmpty ? String(peer.key.hex.prefix(12)) : peer.address }

    init(peer: PeerHello, initiated: Bool, channel: PeerChannel, logger: Logger, maxQueued: Int = 4096, maxInFlight: Int = 64) {
        self.peer = peer
        self.initiated = initiated
        self.channel = channel
        self.logger = logger
        self.maxQueued = maxQueued
        self.maxInFlight = maxInFlight
        (outbox, outboxInput) = AsyncStream.makeStream(of: [UInt8].self)
    }

    public var isClosed: Bool { state.withLock { $0.closed } }

    /// Queues a frame; false when the connection is closed or its queue is full.
    @discardableResult
    func enqueue(_ frame: PeerFrame) -> Bool {
        let ok = state.withLock { s -> Bool in
            guard !s.closed, s.queued < maxQueued else { return false }
            s.queued += 1
            return true
        }
        if ok { outboxInput.yield(frame.encoded) }
        return ok
    }

    /// Sends a request and waits for its response. The request is queued before this suspends,
    /// so requests made one after another from one task reach the peer in that order.
    public func request(_ method: PeerMethod, _ body: [UInt8], timeout: Duration) async -> Result<[UInt8], PeerRequestError> {
        let sent = send(method, body)
        return await sent.wait(timeout: timeout)
    }

    /// Queues a request now; `wait` for its response later.
    public func send(_ method: PeerMethod, _ body: [UInt8]) -> PendingRequest {
        let id = state.withLock { s -> UInt64 in
            defer { s.nextID &+= 1 }
            s.pending[s.nextID] = .expecting
            return s.nextID
        }
        let accepted = enqueue(.request(id: id, method: method, body: body))
        if !accepted { _ = state.withLock { $0.pending.removeValue(forKey: id) } }
        return PendingRequest(connection: self, id: id, method: method, failure: accepted ? nil : (isClosed ? .connectionClosed(peer: name) : .backlogged(peer: name, queued: maxQueued)))
    }

    public struct PendingRequest: Sendable {
        let connection: PeerConnection
        let id: UInt64
        let method: PeerMethod
        let failure: PeerRequestError?

        public func wait(timeout: Duration) async -> Result<[UInt8], PeerRequestError> {
            if let failure { return .failure(failure) }
            let c = connection
            let timer = Task {
                try? await Task.sleep(for: timeout)
                if !Task.isCancelled { c.resolve(id, .failure(.timedOut(peer: c.name, method: method, after: timeout))) }
            }
            defer { timer.cancel() }
            let outcome = await withCheckedContinuation { (k: CheckedContinuation<Outcome, Never>) in
                let ready = c.state.withLock { s -> Outcome? in
                    switch s.pending[id] {
                    case let .done(outcome)?:
                        s.pending[id] = nil
                        return outcome
                    case .expecting? where !s.closed:
                        s.pending[id] = .waiting(k)
                        return nil
                    default:
                        s.pending[id] = nil
                        return .failure(.connectionClosed(peer: c.name))
                    }
                }
                if let ready { k.resume(returning: ready) }
            }
            switch outcome {
            case let .success((.ok, body)): return .success(body)
            case let .success((.error, body)): return .failure(.refused(peer: c.name, String(decoding: body, as: UTF8.self)))
            case .success((.unknownMethod, _)): return .failure(.refused(peer: c.name, "it does not serve \(method)"))
            case let .failure(e): return .failure(e)
            }
        }
    }

    /// Delivers a response (or a failure) to whoever waits for request `id`. A response that
    /// arrives before its waiter registers is kept until it does.
    func resolve(_ id: UInt64, _ outcome: Outcome) {
        let waiter = state.withLock { s -> CheckedContinuation<Outcome, Never>? in
            switch s.pending[id] {
            case .expecting?:
                s.pending[id] = .done(outcome)
                return nil
            case let .waiting(k)?:
                s.pending[id] = nil
                return k
            default:
                return nil  // answered already, timed out, or a response to nothing we asked
            }
        }
        waiter?.resume(returning: outcome)
    }

    /// Runs the connection until the peer closes it, it breaks a protocol rule, or `close()`:
    /// the writer drains the outbox, the reader dispatches what arrives. Pending requests then
    /// fail with `connectionClosed`.
    func run(
        chord: @escaping @Sendable (ChordEnvelope, PeerConnection) async -> Void,
        serve: @escaping @Sendable (PeerMethod, [UInt8], PeerConnection, IngestTurn) async -> (PeerStatus, [UInt8])
    ) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await bytes in self.outbox {
                    self.state.withLock { $0.queued -= 1 }
                    do { try await self.channel.send(binary: bytes) } catch {
                        self.logger.debug("peer \(self.name): sending failed: \(error)")
                        break
                    }
                }
            }
            group.addTask {
                await self.read(chord: chord, serve: serve)
                self.close()
            }
            await group.next()
            self.close()
            group.cancelAll()
        }
        failPending()
    }

    private func read(
        chord: @escaping @Sendable (ChordEnvelope, PeerConnection) async -> Void,
        serve: @escaping @Sendable (PeerMethod, [UInt8], PeerConnection, IngestTurn) async -> (PeerStatus, [UInt8])
    ) async {
        // The peer's requests run concurrently, but readings it forwards enter the ledger in the
        // order they arrived.
        let order = IngestOrder()
        await withTaskGroup(of: Void.self) { group in
            var inFlight = 0
            while true {
                let message: PeerChannel.Message?
                do { message = try await channel.receive() } catch {
                    logger.debug("peer \(name): connection ended: \(error)")
                    break
                }
                guard let message else { break }
                guard case let .binary(bytes) = message else {
                    logger.warning("peer \(name) broke the peer protocol (a text message after the handshake); closing the connection")
                    break
                }
                let frame: PeerFrame
                do throws(PeerProtocolError) { frame = try PeerFrame(decoding: bytes) } catch {
                    if case let .unknownMethod(id, _) = error {
                        enqueue(.response(id: id, status: .unknownMethod, body: Array("unknown method".utf8)))
                        continue
                    }
                    logger.warning("peer \(name) broke the peer protocol (\(error)); closing the connection")
                    break
                }
                switch frame {
                case let .chord(bytes):
                    do {
                        let envelope = try ChordWire.decode(bytes)
                        await chord(envelope, self)
                    } catch {
                        logger.warning("peer \(name) sent a malformed Chord message (\(error)); closing the connection")
                        return
                    }
                case let .response(id, status, body):
                    resolve(id, .success((status, body)))
                case let .request(id, method, body):
                    if inFlight >= maxInFlight {
                        await group.next()
                        inFlight -= 1
                    }
                    inFlight += 1
                    let turn = order.next()
                    group.addTask {
                        defer { turn.finish() }
                        let (status, reply) = await serve(method, body, self, turn)
                        self.enqueue(.response(id: id, status: status, body: reply))
                    }
                }
            }
            group.cancelAll()
        }
    }

    /// Closes the connection: nothing more is sent, and `run` returns.
    public func close() {
        let first = state.withLock { s -> Bool in
            defer { s.closed = true }
            return !s.closed
        }
        if first { outboxInput.finish() }
    }

    private func failPending() {
        let waiters = state.withLock { s -> [CheckedContinuation<Outcome, Never>] in
            var out: [CheckedContinuation<Outcome, Never>] = []
            for (id, slot) in s.pending {
                if case let .waiting(k) = slot { out.append(k); s.pending[id] = nil }
            }
            return out
        }
        for w in waiters { w.resume(returning: .failure(.connectionClosed(peer: name))) }
    }
}
