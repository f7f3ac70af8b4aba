import Foundation
import Synchronization
import Ledger

/// Turns one configured sensor into samples. `samples()` yields them until its iterator goes away
/// and throws when the sensor fails (the sampler then retries with backoff); `readOnce` takes one.
public struct SensorReader: Sendable {
    public let configuration: SensorConfiguration
    public let sysfs: Sysfs
    public let consumer: String

    public init(_ configuration: SensorConfiguration, sysfs: Sysfs = .current, consumer: String = "flowchain") {
        self.configuration = configuration
        self.sysfs = sysfs
        self.consumer = consumer
    }

    static func nowMilliseconds() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    /// One sample: a periodic sensor's reading, a digital input's current value, or a pulse
    /// counter's count over one interval.
    public func readOnce() async throws -> SensorSample {
        switch configuration.kind {
        case let .w1(id, _):
            return try w1(id)
        case let .iio(device, channels, _):
            return try iio(device, channels)
        case let .gpioInput(chip, line, bias, activeLow, _):
            let (c, offset) = try open(chip, line)
            let input = try c.input(offset, consumer: consumer, bias: bias, activeLow: activeLow)
            return SensorSample(payload: ["value": .number(try input.value() ? "1" : "0"), "line": .string(line), "chip": .string(c.info.name)],
                                time: Self.nowMilliseconds())
        case .pulseCounter:
            // Inline (not through `samples()`), so the line is released before this returns.
            let first = Mutex<SensorSample?>(nil)
            try await produce(limit: 1) { sample in first.withLock { $0 = sample } }
            guard let sample = first.withLock({ $0 }) else { throw SensorError(.io, "\(configuration.name): the counter stopped before its first interval ended") }
            return sample
        }
    }

    /// Samples as they come: every interval for periodic sensors, on each change for a digital
    /// input, at the end of each interval for a pulse counter. Throws when the sensor fails. The
    /// sensor is read only while iterated: when the iterator goes away (a `break`, the end of a
    /// scope) or its task is cancelled, reading stops and the line is released.
    public func samples() -> SensorSamples { SensorSamples(reader: self) }

    /// Drives `produce` for one iterator.
    func start(_ continuation: AsyncThrowingStream<SensorSample, any Error>.Continuation) -> Task<Void, Never> {
        Task {
            do {
                try await produce { continuation.yield($0) }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
    }

    private func produce(limit: Int? = nil, _ emit: @escaping @Sendable (SensorSample) -> Void) async throws {
        switch configuration.kind {
        case let .w1(id, interval):
            try await every(interval) { try w1(id) } emit: { emit($0) }
        case let .iio(device, channels, interval):
            try await every(interval) { try iio(device, channels) } emit: { emit($0) }
        case let .gpioInput(chip, line, bias, activeLow, debounce):
            let (c, offset) = try open(chip, line)
            let input = try c.input(offset, consumer: consumer, edge: .both, bias: bias, activeLow: activeLow, debounce: debounce)
            defer { input.stopWatching() }
            let initial = try input.value()
            let chipName = c.info.name
            emit(SensorSample(payload: ["value": .number(initial ? "1" : "0"), "initial": .bool(true), "line": .string(line), "chip": .string(chipName)],
                              time: Self.nowMilliseconds()))
            let change: @Sendable (Bool, [String: JSONValue], Int64) -> Void = { rising, extra, time in
                emit(SensorSample(payload: ["value": .number(rising ? "1" : "0"), "edge": .string(rising ? "rising" : "falling"),
                                            "line": .string(line), "chip": .string(chipName)].merging(extra) { a, _ in a }, time: time))
            }
            // The kernel debounces with libgpiod 2.x. With 1.6 this does: an edge within
            // `debounce` of the last accepted one is bounce, and once the contact has had
            // `debounce` to settle its value is read again, so a change inside the window (a
            // quick press and release) is not lost.
            let softDebounce = input.kernelDebounce ? 0 : debounce.nanoseconds
            let state = DebounceState(initial)
            var settle: Task<Void, Never>? = nil
            defer { settle?.cancel() }
            for try await edge in input.edges() {
                enum Decision { case accept, ignore, settle }
                let ns = edge.monotonicNanoseconds
                let decision = state.value.withLock { s -> Decision in
                    if softDebounce > 0, s.lastAccepted > 0, ns - s.lastAccepted < softDebounce {
                        guard !s.settling else { return .ignore }
                        s.settling = true
                        return .settle
                    }
                    guard edge.rising != s.last else { return .ignore }
                    s.last = edge.rising
                    s.lastAccepted = ns
                    return .accept
                }
                switch decision {
                case .accept:
                    change(edge.rising, ["kernelTimeNs": .number("\(ns)"), "lineSeq": .number("\(edge.lineSequence)")], edge.wallMilliseconds)
                case .settle:
                    let wait = Duration.nanoseconds(Int64(softDebounce - min(softDebounce, GPIO.monotonicNanoseconds() - ns)))
                    settle = Task {
                        try? await Task.sleep(for: wait)
                        guard !Task.isCancelled, let now = try? input.value() else { return }
                        let changed = state.value.withLock { s -> Bool in
                            s.settling = false
                            guard now != s.last else { return false }
                            s.last = now
                            s.lastAccepted = GPIO.monotonicNanoseconds()
                            return true
                        }
                        if changed { change(now, ["settled": .bool(true)], Self.nowMilliseconds()) }
                    }
                case .ignore:
                    break
                }
            }
        case let .pulseCounter(chip, line, edge, bias, debounce, interval):
            let (c, offset) = try open(chip, line)
            let input = try c.input(offset, consumer: consumer, edge: edge, bias: bias, debounce: debounce)
            let softDebounce = input.kernelDebounce ? 0 : debounce.nanoseconds
            let counter = PulseCount()
            let watcher = Task {
                var lastAccepted: UInt64 = 0
                do {
                    for try await e in input.edges() {
                        if softDebounce > 0, lastAccepted > 0, e.monotonicNanoseconds - lastAccepted < softDebounce { continue }
                        lastAccepted = e.monotonicNanoseconds
                        counter.add(e.lineSequence)
                    }
                } catch {
                    // The line failed: the interval loop reports it rather than counting zeros.
                    counter.fail(error)
                }
            }
            let seconds = Double(interval.nanoseconds) / 1e9
            var emitted = 0
            do {
                while !Task.isCancelled {
                    try await Task.sleep(for: interval)
                    if let failure = counter.failure { throw failure }
                    let (count, lost) = counter.take()
                    emit(SensorSample(payload: [
                        "count": .number("\(count)"), "rate": .measured(Double(count) / seconds), "unit": .string("pulses/s"),
                        "intervalMs": .number("\(Int64(seconds * 1000))"), "line": .string(line), "chip": .string(c.info.name),
                        "missed": .number("\(lost)"),
                    ], time: Self.nowMilliseconds()))
                    emitted += 1
                    if let limit, emitted >= limit { break }
                }
            } catch {
                watcher.cancel()
                input.stopWatching()
                _ = await watcher.result
                throw error
            }
            // The line is released (the watcher holds the request) before this returns.
            watcher.cancel()
            input.stopWatching()
            _ = await watcher.result
        }
    }

    private func every(_ interval: Duration, _ read: () throws -> SensorSample, emit: (SensorSample) -> Void) async throws {
        while !Task.isCancelled {
            emit(try read())
            try await Task.sleep(for: interval)
        }
    }

    private func open(_ chip: String, _ line: String) throws -> (GPIO.Chip, Int) {
        let c = try GPIO.Chip(chip)
        return (c, try c.offset(of: line))
    }

    func w1(_ id: String) throws -> SensorSample {
        let t = try OneWire.temperature(of: id, sysfs)
        return SensorSample(payload: ["temperature": .measured(t), "unit": .string("°C"), "sensor": .string(id)], time: Self.nowMilliseconds())
    }

    func iio(_ device: String, _ channels: [String]) throws -> SensorSample {
        let d = try IIO.find(device, sysfs)
        let samples = try IIO.read(d, channels: channels, sysfs)
        var payload: [String: JSONValue] = ["sensor": .string(d.name.isEmpty ? d.id : "\(d.id) (\(d.name))")]
        var units: [String: JSONValue] = [:]
        for s in samples {
            payload[s.channel] = .measured(s.value)
            if !s.unit.isEmpty { units[s.channel] = .string(s.unit) }
        }
        payload["units"] = .object(units)
        return SensorSample(payload: payload, time: Self.nowMilliseconds())
    }
}

/// A sensor's samples (`SensorReader.samples()`). Each iterator reads the sensor for as long as it
/// exists: an `AsyncThrowingStream` alone would keep its producer alive after the consumer broke
/// out of its loop (the producer holds the continuation), and with it the GPIO line.
public struct SensorSamples: AsyncSequence, Sendable {
    public typealias Element = SensorSample
    let reader: SensorReader

    public func makeAsyncIterator() -> Iterator { Iterator(reader) }

    public final class Iterator: AsyncIteratorProtocol {
        private var base: AsyncThrowingStream<SensorSample, any Error>.Iterator
        private let task: Task<Void, Never>

        init(_ reader: SensorReader) {
            let (stream, continuation) = AsyncThrowingStream<SensorSample, any Error>.makeStream(bufferingPolicy: .bufferingNewest(1024))
            base = stream.makeAsyncIterator()
            let task = reader.start(continuation)
            continuation.onTermination = { _ in task.cancel() }
            self.task = task
        }

        deinit { task.cancel() }

        public func next() async throws -> SensorSample? { try await base.next() }
    }
}

/// A digital input's debouncing state, shared by the edge loop and the settle check.
final class DebounceState: Sendable {
    let value: Mutex<(last: Bool, lastAccepted: UInt64, settling: Bool)>
    init(_ initial: Bool) { value = Mutex((initial, 0, false)) }
}

/// Edges counted between two intervals' ends; `missed` counts kernel sequence numbers skipped
/// (events the kernel's buffer dropped).
final class PulseCount: Sendable {
    private let state = Mutex<(count: Int, lastSeq: UInt64, missed: Int)>((0, 0, 0))
    private let failed = Mutex<(any Error)?>(nil)

    /// Why the edges stopped, once they have.
    var failure: (any Error)? { failed.withLock { $0 } }
    func fail(_ error: any Error) { failed.withLock { $0 = error } }

    func add(_ seq: UInt64) {
        state.withLock { s in
            s.count += 1
            if s.lastSeq > 0, seq > s.lastSeq + 1 { s.missed += Int(seq - s.lastSeq - 1) }
            s.lastSeq = max(s.lastSeq, seq)
        }
    }

    func take() -> (Int, Int) {
        state.withLock { s in
            defer { s.count = 0; s.missed = 0 }
            return (s.count, s.missed)
        }
    }
}

extension Duration {
    /// The whole duration in nanoseconds (negative durations count as zero).
    var nanoseconds: UInt64 {
        let (s, a) = components
        guard s >= 0, a >= 0 else { return 0 }
        return UInt64(s) * 1_000_000_000 + UInt64(a / 1_000_000_000)
    }
}
