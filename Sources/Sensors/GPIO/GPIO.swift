internal import CFlowchainIO
import Foundation
import Synchronization

/// GPIO through the Linux character device (`/dev/gpiochipN`) and libgpiod, 1.6 or 2.x.
public enum GPIO {
    public struct ChipInfo: Sendable, Equatable {
        public let name: String
        public let label: String
        public let path: String
        public let lines: Int
    }

    public enum Bias: String, Sendable, CaseIterable { case asIs = "as-is", disabled, pullUp = "pull-up", pullDown = "pull-down" }
    public enum Edge: String, Sendable, CaseIterable { case none, rising, falling, both }

    public struct LineInfo: Sendable, Equatable {
        public let offset: Int
        public let name: String
        public let consumer: String
        public let used: Bool
        public let isOutput: Bool
        public let activeLow: Bool
        public let bias: Bias
    }

    /// One edge, as the kernel saw it.
    public struct EdgeEvent: Sendable, Equatable {
        /// The kernel's timestamp (CLOCK_MONOTONIC, ns).
        public let monotonicNanoseconds: UInt64
        public let rising: Bool
        /// 1, 2, … for this request: the kernel's with libgpiod 2.x, counted by the shim with 1.6.
        public let lineSequence: UInt64
        public let kernelSequence: Bool

        /// The event's time on the wall clock, in ms since the epoch.
        public var wallMilliseconds: Int64 { GPIO.wallMilliseconds(monotonic: monotonicNanoseconds) }
    }

    /// "libgpiod 1.6.3" or "libgpiod 2.2.1".
    public static var backend: String { String(cString: fio_backend()) }

    /// The GPIO chips on this machine, in /dev order.
    public static func chips() -> [ChipInfo] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: "/dev")) ?? []).filter { $0.hasPrefix("gpiochip") }
        return names.sorted { $0.count != $1.count ? $0.count < $1.count : $0 < $1 }.compactMap { name in
            guard fio_is_gpiochip("/dev/\(name)") else { return nil }
            return (try? Chip(name))?.info
        }
    }

    /// CLOCK_MONOTONIC now, in ns: the clock of the kernel's edge timestamps.
    static func monotonicNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// A monotonic kernel timestamp on the wall clock (ms since the epoch).
    static func wallMilliseconds(monotonic ns: UInt64) -> Int64 {
        var mono = timespec(), real = timespec()
        clock_gettime(CLOCK_MONOTONIC, &mono)
        clock_gettime(CLOCK_REALTIME, &real)
        let monoNow = Int64(mono.tv_sec) * 1_000_000_000 + Int64(mono.tv_nsec)
        let realNow = Int64(real.tv_sec) * 1_000_000_000 + Int64(real.tv_nsec)
        return (realNow - (monoNow - Int64(ns))) / 1_000_000
    }

    static func error(_ e: fio_error) -> SensorError {
        let op = withUnsafeBytes(of: e.op) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return SensorError(SensorError.kind(errno: e.code), "\(op): \(SensorError.errnoText(e.code))", code: e.code)
    }

    /// An open chip. `@unchecked Sendable`: the handle is only read after init (the shim's chip
    /// calls do not mutate it) and closed in deinit.
    public final class Chip: @unchecked Sendable {
        let handle: OpaquePointer
        public let info: ChipInfo

        /// Opens a chip by path (`/dev/gpiochip0`), name (`gpiochip0`) or label (`pinctrl-bcm2711`).
        public init(_ which: String) throws(SensorError) {
            var e = fio_error()
            guard let h = fio_chip_open(which, &e) else {
                var err = GPIO.error(e)
                if err.kind == .permission { err = GPIO.permissionHelp(which, err) }
                if err.kind == .missing {
                    let found = GPIO.chips().map { "\($0.name) (\($0.label))" }
                    err = SensorError(.missing, "GPIO chip \(which) not found (\(found.isEmpty ? "this machine has no /dev/gpiochip*" : "found: " + found.joined(separator: ", ")))", code: err.code)
                }
                throw err
            }
            handle = h
            var i = fio_chip_info()
            fio_chip_get_info(h, &i)
            func text<T>(_ t: T) -> String { withUnsafeBytes(of: t) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) } }
            info = ChipInfo(name: text(i.name), label: text(i.label), path: text(i.path), lines: Int(i.lines))
        }

        deinit { fio_chip_close(handle) }

        public func line(_ offset: Int) throws(SensorError) -> LineInfo {
            var e = fio_error(), l = fio_line_info()
            guard offset >= 0, offset < info.lines else {
                throw SensorError(.missing, "line \(offset) of \(info.name) (\(info.label)): the chip has lines 0…\(info.lines - 1)")
            }
            guard fio_chip_line_info(handle, UInt32(offset), &l, &e) == 0 else { throw GPIO.error(e) }
            func text<T>(_ t: T) -> String { withUnsafeBytes(of: t) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) } }
            let bias: Bias = switch l.bias {
            case FIO_BIAS_DISABLED: .disabled
            case FIO_BIAS_PULL_UP: .pullUp
            case FIO_BIAS_PULL_DOWN: .pullDown
            default: .asIs
            }
            return LineInfo(offset: offset, name: text(l.name), consumer: text(l.consumer), used: l.used,
                            isOutput: l.direction == FIO_DIRECTION_OUTPUT, activeLow: l.active_low, bias: bias)
        }

        public func lines() throws(SensorError) -> [LineInfo] {
            var out: [LineInfo] = []
            for i in 0..<info.lines { out.append(try line(i)) }
            return out
        }

        /// The offset of a line given by name (`GPIO17`) or number (`17`).
        public func offset(of line: String) throws(SensorError) -> Int {
            if let n = Int(line) {
                guard n >= 0, n < info.lines else { throw SensorError(.missing, "line \(n) of \(info.name) (\(info.label)): the chip has lines 0…\(info.lines - 1)") }
                return n
            }
            var e = fio_error()
            let n = fio_chip_find_line(handle, line, &e)
            guard n >= 0 else { throw SensorError(.missing, "\(info.name) (\(info.label)) has no line named \(line)", code: e.code) }
            return Int(n)
        }

        /// Requests one input line (edge events when `edge` is not `.none`).
        public func input(_ offset: Int, consumer: String, edge: Edge = .none, bias: Bias = .asIs, activeLow: Bool = false,
                          debounce: Duration = .zero) throws(SensorError) -> Input {
            var e = fio_error()
            let edges: [Edge: fio_edge] = [.none: FIO_EDGE_NONE, .rising: FIO_EDGE_RISING, .falling: FIO_EDGE_FALLING, .both: FIO_EDGE_BOTH]
            let biases: [Bias: fio_bias] = [.asIs: FIO_BIAS_AS_IS, .disabled: FIO_BIAS_DISABLED, .pullUp: FIO_BIAS_PULL_UP, .pullDown: FIO_BIAS_PULL_DOWN]
            let us = UInt32(clamping: debounce.nanoseconds / 1_000)
            guard let r = fio_request_input(handle, UInt32(offset), consumer, edges[edge]!, biases[bias]!, activeLow, us, &e) else {
                throw requestError(e, offset)
            }
            return Input(r, chip: info, offset: offset)
        }

        /// Requests one output line, driven to `value`.
        public func output(_ offset: Int, consumer: String, value: Bool) throws(SensorError) -> Output {
            var e = fio_error()
            guard let r = fio_request_output(handle, UInt32(offset), consumer, value ? 1 : 0, &e) else { throw requestError(e, offset) }
            return Output(r, offset: offset)
        }

        /// A refused request, said plainly: who holds a busy line, which group may use the chip.
        func requestError(_ e: fio_error, _ offset: Int) -> SensorError {
            let err = GPIO.error(e)
            switch err.kind {
            case .busy:
                let holder = (try? line(offset)).map { $0.consumer.isEmpty ? "another program (it gave no name)" : "'\($0.consumer)'" } ?? "another program"
                return SensorError(.busy, "line \(offset) of \(info.name) (\(info.label)) is in use by \(holder); stop it or choose another line", code: err.code)
            case .permission:
                return GPIO.permissionHelp(info.path, err)
            default:
                return err
            }
        }
    }

    /// "no permission on /dev/gpiochip0 (group gpio): add this user to the group …"
    static func permissionHelp(_ which: String, _ err: SensorError) -> SensorError {
        let path = which.hasPrefix("/") ? which : "/dev/\(which)"
        var st = stat()
        var group = "the device's group"
        if stat(path, &st) == 0, let g = getgrgid(st.st_gid) { group = "group '\(String(cString: g.pointee.gr_name))'" }
        let user = getpwuid(geteuid()).map { String(cString: $0.pointee.pw_name) } ?? "this user"
        return SensorError(.permission, "no permission on \(path) (\(err.message)): add \(user) to \(group) (sudo usermod -aG <group> \(user), then log in again) or run the node as a member of it", code: err.code)
    }

    /// A requested input line. Values can be read at any time; with edge detection, `edges()`
    /// waits for events on a thread of its own (never the cooperative pool).
    public final class Input: @unchecked Sendable {
        // @unchecked Sendable: the request is used by one reader at a time (the edge thread, or
        // `value()` before or after it), and released once, after the thread has ended.
        let request: OpaquePointer
        public let chip: ChipInfo
        public let offset: Int
        /// Shared with the edge thread, which does not retain the input: dropping the last
        /// reference stops the thread (waiting for it) and then releases the line, at once.
        final class Watch: Sendable {
            let state = Mutex<(watching: Bool, stop: Bool, finished: Bool)>((false, false, false))
            let done = DispatchSemaphore(value: 0)
        }
        private let watch = Watch()
        struct Request: @unchecked Sendable { let pointer: OpaquePointer }

        init(_ request: OpaquePointer, chip: ChipInfo, offset: Int) {
            self.request = request
            self.chip = chip
            self.offset = offset
        }

        deinit {
            stopWatching()
            fio_request_release(request)
        }

        /// Whether the kernel applies the debounce period (libgpiod 2.x); with 1.6 callers debounce.
        public var kernelDebounce: Bool { fio_request_kernel_debounce(request) }

        public func value() throws(SensorError) -> Bool {
            var e = fio_error()
            let v = fio_request_get_value(request, &e)
            guard v >= 0 else { throw GPIO.error(e) }
            return v == 1
        }

        /// Edge events as they happen, until the stream's consumer stops or `stopWatching()`.
        /// Errors end the stream (thrown to the consumer).
        public func edges() -> AsyncThrowingStream<EdgeEvent, any Error> {
            let (stream, continuation) = AsyncThrowingStream<EdgeEvent, any Error>.makeStream(bufferingPolicy: .bufferingNewest(65_536))
            let start = watch.state.withLock { s -> Bool in
                guard !s.watching else { return false }
                s.watching = true
                return true
            }
            guard start else {
                continuation.finish(throwing: SensorError(.configuration, "line \(offset) of \(chip.name) is already being watched"))
                return stream
            }
            let watch = self.watch, request = Request(pointer: self.request)
            continuation.onTermination = { _ in watch.state.withLock { $0.stop = true } }
            let thread = Thread {
                defer {
                    watch.state.withLock { $0.finished = true }
                    watch.done.signal()
                }
                var e = fio_error()
                while !watch.state.withLock({ $0.stop }) {
                    let ready = fio_request_wait_event(request.pointer, 100_000_000, &e)
                    if ready < 0 {
                        if e.code == EINTR { continue }
                        continuation.finish(throwing: GPIO.error(e))
                        return
                    }
                    guard ready == 1 else { continue }
                    var event = fio_event()
                    guard fio_request_read_event(request.pointer, &event, &e) == 0 else {
                        if e.code == EINTR || e.code == EAGAIN { continue }
                        continuation.finish(throwing: GPIO.error(e))
                        return
                    }
                    continuation.yield(EdgeEvent(monotonicNanoseconds: event.timestamp_ns, rising: event.rising,
                                                 lineSequence: event.line_seqno, kernelSequence: event.kernel_seqno))
                }
                continuation.finish()
            }
            thread.name = "gpio \(chip.name):\(offset)"
            thread.start()
            return stream
        }

        /// Stops the edge thread and waits for it (at most one wait period).
        public func stopWatching() {
            let running = watch.state.withLock { s -> Bool in
                s.stop = true
                return s.watching && !s.finished
            }
            if running {
                watch.done.wait()
                watch.done.signal()   // for any other caller waiting too
            }
        }
    }

    /// A requested output line.
    public final class Output: @unchecked Sendable {
        let request: OpaquePointer
        public let offset: Int

        init(_ request: OpaquePointer, offset: Int) {
            self.request = request
            self.offset = offset
        }

        deinit { fio_request_release(request) }

        public func set(_ value: Bool) throws(SensorError) {
            var e = fio_error()
            guard fio_request_set_value(request, value ? 1 : 0, &e) == 0 else { throw GPIO.error(e) }
        }
    }
}
