@testable import EnchufeCore
import Testing

@Suite struct BoundedQueueTests {
    /// Yields until `condition` holds, boundedly (a broken queue fails the test instead of hanging).
    func until(_ condition: () -> Bool) async -> Bool {
        for _ in 0..<200_000 where !condition() { await Task.yield() }
        return condition()
    }

    /// The take just made room: the waiting task must have been woken (then it is let go anyway,
    /// so that a broken queue fails the test instead of hanging it).
    func expectWoken(_ waiter: Task<Void, Never>, by queue: BoundedQueue<Int>) async {
        #expect(await until { queue.roomWaiting == 0 }, "the take that made room woke the task")
        waiter.cancel()
        await waiter.value
    }

    @Test func aTaskWaitingForRoomIsWokenByTheTakeThatMakesIt() async throws {
        let queue = BoundedQueue<Int>(capacity: 2, producers: 1)
        await queue.waitForRoom()  // empty: at once
        try await queue.send([1, 2])
        let waiter = Task { await queue.waitForRoom() }
        #expect(await until { queue.roomWaiting == 1 }, "a full queue makes the task wait")
        guard case .batch(let taken) = await queue.next(upTo: 1) else { Issue.record("nothing taken"); return }
        #expect(taken == [1])
        await expectWoken(waiter, by: queue)
    }

    @Test func aTaskWaitingForRoomWhileASenderWaitsIsWokenOnlyOnceTheSendersBatchIsIn() async throws {
        let queue = BoundedQueue<Int>(capacity: 1, producers: 1)
        try await queue.send([1])
        let sender = Task { try await queue.send([2]) }
        let waiter = Task { await queue.waitForRoom() }
        #expect(await until { queue.roomWaiting == 1 && queue.count == 2 })
        _ = await queue.next(upTo: 1)  // takes 1; the sender's 2 comes in: still full
        try await sender.value
        #expect(queue.roomWaiting == 1, "no room yet: the sender's batch took it")
        _ = await queue.next(upTo: 1)
        await expectWoken(waiter, by: queue)
    }

    @Test func aCancelledWaitForRoomReturnsAndLeavesNoWaiter() async throws {
        let queue = BoundedQueue<Int>(capacity: 1, producers: 1)
        try await queue.send([1])
        let waiter = Task { await queue.waitForRoom() }
        #expect(await until { queue.roomWaiting == 1 })
        waiter.cancel()
        await waiter.value
        #expect(queue.roomWaiting == 0)
    }
}
