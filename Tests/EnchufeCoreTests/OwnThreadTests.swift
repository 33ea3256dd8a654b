import Foundation
import TestSupport
import Testing

/// The long computing tests run their work through `onOwnThread`, off the cooperative pool: the
/// work must really leave the pool's threads, and the task must come back with its result.
@Suite struct OwnThreadTests {
    @Test func workRunsOnAThreadOfItsOwnAndReturnsItsResult() async throws {
        let (own, sum) = await onOwnThread { (OwnThreadExecutor.isCurrent, (1...1000).reduce(0, +)) }
        #expect(own)
        #expect(sum == 500_500)
        #expect(!Self.onOwnThreadNow(), "back on the pool")
    }

    static func onOwnThreadNow() -> Bool { OwnThreadExecutor.isCurrent }

    @Test func anErrorThrownThereReachesTheTest() async {
        struct Refused: Error {}
        await #expect(throws: Refused.self) { try await onOwnThread { throw Refused() } }
    }
}
