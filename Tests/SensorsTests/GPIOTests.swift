import Foundation
import Sensors
import Testing

/// The GPIO path as far as it goes without a chip here; the VM test drives a real kernel chip.
@Suite("GPIO through libgpiod")
struct GPIOTests {
    static let hasChip = !GPIO.chips().isEmpty

    @Test func theBackendIsTheLibgpiodThisWasBuiltWith() {
        #expect(GPIO.backend.hasPrefix("libgpiod 1.") || GPIO.backend.hasPrefix("libgpiod 2."), "\(GPIO.backend)")
    }

    @Test func aChipThatIsNotThereIsAPreciseErrorNamingWhatIs() throws {
        do { _ = try GPIO.Chip("flowchain-no-such-chip"); Issue.record("opened") } catch {
            #expect(error.kind == .missing && error.message.contains("GPIO chip flowchain-no-such-chip not found"), "\(error)")
            #expect(error.message.contains(Self.hasChip ? "found:" : "this machine has no /dev/gpiochip*"), "\(error)")
        }
        do { _ = try GPIO.Chip("/dev/flowchain-no-such-chip"); Issue.record("opened") } catch {
            #expect(error.kind == .missing && error.code == ENOENT, "\(error)")
        }
    }

    /// On a board (or any machine with a GPIO chip), the chips can be opened and their lines read.
    @Test(.enabled(if: hasChip, "no /dev/gpiochip* on this machine: the hardware test runs on a board; the VM test covers the kernel path"))
    func onRealHardwareEveryChipOpensAndListsItsLines() throws {
        for info in GPIO.chips() {
            let chip = try GPIO.Chip(info.path)
            #expect(chip.info == info)
            let lines = try chip.lines()
            #expect(lines.count == info.lines)
            if let named = lines.first(where: { !$0.name.isEmpty }) { #expect(try chip.offset(of: named.name) == named.offset) }
            do { _ = try chip.offset(of: "\(info.lines + 3)"); Issue.record("accepted") } catch { #expect(error.kind == .missing) }
        }
    }
}

@testable import Sensors

extension GPIOTests {
    /// No permission on the chip: the message names the device's group, the user and the command.
    @Test func aPermissionErrorSaysWhichGroupToJoin() {
        let user = String(cString: getpwuid(geteuid())!.pointee.pw_name)
        var st = stat()
        stat("/dev/null", &st)
        let group = String(cString: getgrgid(st.st_gid)!.pointee.gr_name)
        let e = GPIO.permissionHelp("/dev/null", SensorError(.permission, "open GPIO chip /dev/null: Permission denied", code: EACCES))
        #expect(e.kind == .permission && e.code == EACCES)
        #expect(e.message.contains("no permission on /dev/null") && e.message.contains("group '\(group)'") && e.message.contains("usermod -aG <group> \(user)"), "\(e)")
    }
}
