@testable import EnchufeCore
import Foundation
import Logging
import Testing

/// rate_limit and delay take time; with a virtual clock the tests see how much.
@Suite struct PacingTests {
    func context(_ clock: VirtualClock) throws -> NodeContext {
        NodeContext(
            flow: "f", node: "n", tenant: "t", store: try SQLiteStore(path: ":memory:"), clock: clock,
            logger: Logger(label: "t", factory: { _ in SwiftLogNoOpLogHandler() }), metrics: HubMetrics())
    }

    @Test func rateLimitLetsABurstThroughThenSpacesMessagesEvenly() async throws {
        let start = Date(timeIntervalSince1970: 1_700_000_000)
        let clock = VirtualClock(start: start)
        let ctx = try context(clock)
        let node = RateLimitNode(rate: 2, per: .seconds(1), drop: false)
        var passedAt: [TimeInterval] = []
        for i in 0..<6 {
            let out = try await node.process(Message(payload: .number(Double(i))), ctx)
            #expect(out.count == 1)
            passedAt.append(clock.now().timeIntervalSince(start))
        }
        #expect(passedAt == [0, 0, 0.5, 1.0, 1.5, 2.0])
    }

    @Test func rateLimitRefillsAfterAQuietSpell() async throws {
        let start = Date(timeIntervalSince1970: 1_700_000_000)
        let clock = VirtualClock(start: start)
        let ctx = try context(clock)
        let node = RateLimitNode(rate: 2, per: .seconds(60), drop: true)
        var passed = 0
        for _ in 0..<5 { passed += try await node.process(Message(), ctx).count }
        #expect(passed == 2)
        clock.advance(to: start.addingTimeInterval(30))
        passed = 0
        for _ in 0..<5 { passed += try await node.process(Message(), ctx).count }
        #expect(passed == 1)
    }

    @Test func delayHoldsEachMessageForItsTimeAndFlushesEverythingAtTheEnd() async throws {
        let start = Date(timeIntervalSince1970: 1_700_000_000)
        let clock = VirtualClock(start: start)
        let ctx = try context(clock)
        let node = DelayNode(delay: .seconds(30), maxPending: 100)
        #expect(try await node.process(Message(payload: 1), ctx).isEmpty)
        clock.advance(to: start.addingTimeInterval(10))
        #expect(try await node.process(Message(payload: 2), ctx).isEmpty)
        #expect(node.flushDeadline() == start.addingTimeInterval(30))
        clock.advance(to: start.addingTimeInterval(30))
        #expect(try await node.flush(ctx, final: false).map(\.message.payload) == [1])
        #expect(node.flushDeadline() == start.addingTimeInterval(40))
        #expect(try await node.flush(ctx, final: true).map(\.message.payload) == [2])
        #expect(node.flushDeadline() == nil)
    }

    @Test func aBatchIsDeliveredOnlyWhenItsMessagesAre() async throws {
        let clock = VirtualClock(start: Date(timeIntervalSince1970: 0))
        let ctx = try context(clock)
        let node = BatchNode(count: 2, interval: nil)
        var first = Message(payload: 1)
        first.delivery = Delivery()
        var second = Message(payload: 2)
        second.delivery = Delivery()
        #expect(try await node.process(first, ctx).isEmpty)
        first.delivery?.seal()  // the engine's claim on the input, released after process
        #expect(first.delivery?.settledOutcome == nil)
        let out = try await node.process(second, ctx)
        second.delivery?.seal()
        #expect(out.count == 1)
        #expect(first.delivery?.settledOutcome == nil)
        out[0].message.delivery?.release(failure: "sink failed")
        #expect(first.delivery?.settledOutcome == .failed("sink failed"))
        #expect(second.delivery?.settledOutcome == .failed("sink failed"))
    }
}
