/// A min-heap of simulator events ordered by (time, sequence): ties run in the order they were
/// scheduled, which keeps a seeded run exactly repeatable. The heap holds small fixed-size keys;
/// payloads wait in a slot array, so sifting never copies a message.
struct EventQueue<Payload> {
    struct Key {
        let time: Int64
        let sequence: UInt64
        let slot: Int32
        func precedes(_ o: Key) -> Bool { time != o.time ? time < o.time : sequence < o.sequence }
    }

    private var heap: [Key] = []
    private var slots: [Payload?] = []
    private var free: [Int32] = []
    private var sequence: UInt64 = 0

    var nextTime: Int64? { heap.first?.time }

    mutating func push(_ payload: Payload, at time: Int64) {
        let slot: Int32
        if let f = free.popLast() {
            slot = f
            slots[Int(f)] = payload
        } else {
            slot = Int32(slots.count)
            slots.append(payload)
        }
        heap.append(Key(time: time, sequence: sequence, slot: slot))
        sequence &+= 1
        var i = heap.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard heap[i].precedes(heap[parent]) else { break }
            heap.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> (time: Int64, payload: Payload)? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let top = heap.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < heap.count, heap[l].precedes(heap[m]) { m = l }
            if r < heap.count, heap[r].precedes(heap[m]) { m = r }
            if m == i { break }
            heap.swapAt(i, m)
            i = m
        }
        let payload = slots[Int(top.slot)].take()!
        free.append(top.slot)
        return (top.time, payload)
    }
}
