import Synchronization

/// The outcome of one enqueued reading, delivered once its transaction is durable (or refused).
final class AckPromise: Sendable {
    private let state = Mutex<(result: Result<Ack, IngestError>?, waiter: CheckedContinuation<Result<Ack, IngestError>, Never>?)>((nil, nil))

    init() {}

    init(_ result: Result<Ack, IngestError>) {
        state.withLock { $0.result = result }
    }

    func resolve(_ result: Result<Ack, IngestError>) {
        let waiter = state.withLock { s -> CheckedContinuation<Result<Ack, IngestError>, Never>? in
            guard s.result == nil else { return nil }
            s.result = result
            defer { s.waiter = nil }
            return s.waiter
        }
        waiter?.resume(returning: result)
    }

    var value: Result<Ack, IngestError> {
        get async {
            await withCheckedContinuation { (c: CheckedContinuation<Result<Ack, IngestError>, Never>) in
                let ready = state.withLock { s -> Result<Ack, IngestError>? in
                    if let r = s.result { return r }
                    s.waiter = c
                    return nil
                }
                if let ready { c.resume(returning: ready) }
            }
        }
    }
}
