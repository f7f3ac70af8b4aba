/// A min-heap of simulator events ordered by (time, sequence): ties run in the order they were
/// scheduled, which keeps a seeded run exactly repeatable.
struct EventQueue<Payload> {
    struct Entry {
        let time: Int64
        let sequence: UInt64
        let payload: Payload
        func precedes(_ o: Entry) -> Bool { time != o.time ? time < o.time : sequence < o.sequence }
    }

    private var heap: [Entry] = []
    private var sequence: UInt64 = 0

    var count: Int { heap.count }
    var isEmpty: Bool { heap.isEmpty }
    var nextTime: Int64? { heap.first?.time }

    mutating func push(_ payload: Payload, at time: Int64) {
        heap.append(Entry(time: time, sequence: sequence, payload: payload))
        sequence &+= 1
        var i = heap.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard heap[i].precedes(heap[parent]) else { break }
            heap.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> Entry? {
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
        return top
    }
}
