import FlowchainTesting
import Foundation
import Sensors
import Testing

@Suite("Sensor samples stop when nobody iterates")
struct IteratorLifetimeTests {
    @Test func droppingTheIteratorStopsReading() async throws {
        let sys = SysfsFixture()
        try sys.w1("28-000005e2fdc3", SysfsFixture.goodW1)
        let reader = SensorReader(SensorConfiguration(name: "t", kind: .w1(id: "28-000005e2fdc3", interval: .milliseconds(10))), sysfs: Sysfs(root: sys.root))
        weak var weakIterator: SensorSamples.Iterator?
        do {
            let it = reader.samples().makeAsyncIterator()
            weakIterator = it
            _ = try await it.next()
            _ = try await it.next()
        }
        #expect(weakIterator == nil, "the iterator is released at the end of its scope")
    }
}
