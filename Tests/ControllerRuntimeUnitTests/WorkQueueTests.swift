import ControllerRuntime
import Foundation
import TestSupport
import Testing

@Suite("Work queue")
struct WorkQueueTests {
    @Test("dedupes waiting keys and never hands one key to two workers")
    func dedupeAndExclusive() async {
        let queue = WorkQueue<String>()
        queue.add("a")
        queue.add("a")
        queue.add("b")
        #expect(queue.length == 2)
        let first = await queue.next()
        #expect(first == "a")
        queue.add("a")  // while in flight: not handed out again...
        let second = await queue.next()
        #expect(second == "b")
        #expect(queue.length == 0)
        queue.done("a")  // ...until done
        let third = await queue.next()
        #expect(third == "a")
    }

    @Test("with a group limit of 1, a worker skips the keys of a group already in flight and takes another group's; the skipped keys keep their order")
    func groupLimit() async {
        let queue = WorkQueue<String>(groupLimit: .init(maxInFlight: 1, group: { $0.split(separator: "/").first.map(String.init) }))
        for key in ["slow/1", "slow/2", "slow/3", "other/1", "global"] { queue.add(key) }
        #expect(await queue.next() == "slow/1")
        #expect(await queue.next() == "other/1", "slow holds its one slot: its later keys are skipped")
        #expect(await queue.next() == "global", "a key without a group is not limited")
        #expect(queue.length == 2)
        queue.add("other/2")  // other is at its limit too: queued, not handed out
        queue.done("other/1")
        #expect(await queue.next() == "other/2")
        queue.done("slow/1")
        #expect(await queue.next() == "slow/2", "the next of the slow group, in order, once its slot is free")
        #expect(queue.inFlight == 3)
    }

    @Test("a worker waiting while every queued key's group is at its limit gets one when a key of that group is done")
    func groupLimitWakesWaiters() async throws {
        let queue = WorkQueue<String>(groupLimit: .init(maxInFlight: 1, group: { $0.split(separator: "/").first.map(String.init) }))
        queue.add("slow/1")
        queue.add("slow/2")
        #expect(await queue.next() == "slow/1")
        async let waiting = queue.next()
        try await eventually("the second worker to wait") { queue.waitingWorkers == 1 }
        queue.add("slow/3")  // added while a worker waits: still at the group's limit
        #expect(queue.length == 2 && queue.waitingWorkers == 1)
        queue.done("slow/1")
        #expect(await waiting == "slow/2")
        queue.shutDown()
        #expect(await queue.next() == nil)
    }

    @Test("with a group limit, a key added again while in flight does not pass the older keys of its group")
    func groupLimitKeepsOrder() async throws {
        let queue = WorkQueue<String>(groupLimit: .init(maxInFlight: 1, group: { $0.split(separator: "/").first.map(String.init) }))
        queue.add("hot/1")
        queue.add("hot/2")
        #expect(await queue.next() == "hot/1")
        queue.add("hot/1")  // changed while in flight: queued again once done
        async let waiting = queue.next()
        try await eventually("a worker to wait") { queue.waitingWorkers == 1 }
        queue.done("hot/1")
        #expect(await waiting == "hot/2", "the older key first")
        queue.done("hot/2")
        #expect(await queue.next() == "hot/1")
    }

    @Test("per-key backoff doubles from 5 ms to 1000 s and resets on forget")
    func backoff() {
        let queue = WorkQueue<String>()
        #expect(queue.backoff(failures: 0) == .milliseconds(5))
        #expect(queue.backoff(failures: 1) == .milliseconds(10))
        #expect(queue.backoff(failures: 10) == .milliseconds(5120))
        #expect(queue.backoff(failures: 30) == .seconds(1000))
        queue.addRateLimited("k")
        queue.addRateLimited("k")
        #expect(queue.failureCount("k") == 2)
        queue.forget("k")
        #expect(queue.failureCount("k") == 0)
    }

    @Test("one timer loop fires 500 delayed keys, each once, on the queue's clock; an earlier time for a key wins; shutdown ends the loop")
    func delayedKeys() async throws {
        let clock = ManualClock()
        let queue = WorkQueue<String>(clock: clock)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await queue.runTimers() }
            // Added latest first, so every insertion is a new earliest deadline and wakes the loop.
            for index in (0..<500).reversed() { queue.add("k\(index)", after: .milliseconds(20 + index / 10)) }
            queue.add("k499", after: .milliseconds(1))  // earlier than its first time: wins
            queue.add("k0", after: .seconds(60))        // later than its first time: ignored
            try await clock.waitForSleepers(at: [.milliseconds(1)])
            clock.advance(by: .milliseconds(1))
            #expect(await queue.next() == "k499")
            queue.done("k499")
            try await clock.waitForSleepers(at: [.milliseconds(20)])
            clock.advance(by: .milliseconds(100))  // every other key is due
            var seen = ["k499"]
            while seen.count < 500, let key = await queue.next() {
                seen.append(key)
                queue.done(key)
            }
            #expect(Set(seen).count == 500, "each key once, although k499 and k0 were added twice")
            #expect(seen.count == 500)
            queue.shutDown()
            try await group.next()  // the timer loop ended
        }
    }

    @Test("on the queue's clock: a delayed key is queued at its time and not before; an earlier time for a key wins, a later one is ignored; backoff delays too")
    func delaysOnTheQueueClock() async throws {
        let clock = ManualClock()
        let queue = WorkQueue<String>(clock: clock)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await queue.runTimers() }
            queue.add("later", after: .seconds(30))
            queue.add("later", after: .seconds(60))  // later than its pending time: ignored
            try await clock.waitForSleepers(1)
            clock.advance(by: .seconds(30) - .milliseconds(1))
            try await Task.sleep(for: .milliseconds(50))  // the loop would have queued it by now
            #expect(queue.length == 0, "not before its time")
            clock.advance(by: .milliseconds(1))
            #expect(await queue.next() == "later")
            queue.done("later")
            try await eventually("the timer loop to wait with no timer") { clock.sleepers == 0 }
            clock.advance(by: .seconds(60))
            try await Task.sleep(for: .milliseconds(50))
            #expect(queue.length == 0, "the ignored later time queued nothing")

            queue.add("soon", after: .seconds(10))
            queue.add("soon", after: .seconds(2))  // earlier: wins
            try await clock.waitForSleepers(at: [.seconds(92)])  // 90 s + 2 s
            clock.advance(by: .seconds(2))
            #expect(await queue.next() == "soon")
            queue.done("soon")

            // A failed key waits for its backoff (5 ms, then 10 ms) on the same clock.
            try await clock.waitForSleepers(at: [.seconds(100)])  // the stale 10 s time of "soon"
            queue.addRateLimited("failing")
            queue.addRateLimited("failing")  // the first (5 ms) is pending: the 10 ms one is ignored
            try await clock.waitForSleepers(at: [.milliseconds(92_005)])
            clock.advance(by: .milliseconds(5))
            #expect(await queue.next() == "failing")
            queue.done("failing")
            queue.shutDown()
            group.cancelAll()
        }
    }

    @Test("shutdown wakes idle workers with nil")
    func shutdown() async {
        let queue = WorkQueue<String>()
        await withTaskGroup(of: String?.self) { group in
            group.addTask { await queue.next() }
            try? await Task.sleep(for: .milliseconds(50))
            queue.shutDown()
            let result = await group.next()
            #expect(result == .some(nil))
        }
        queue.add("ignored")
        #expect(queue.length == 0)
    }
}

/// Tests with deadlines: `scripts/test` runs every type whose name ends in `TimingTests` after
/// the rest, alone, so two cores shared with moto and the other tests do not decide them. The
/// logic is tested on a manual clock above; this checks the real timer, with 700 ms of room
/// beyond the delay for a machine with one core kept busy (the operator's target is a backup
/// within 1 s of its time).
@Suite("Work queue timing")
struct WorkQueueTimingTests {
    @Test("a delayed add fires at its time on the real clock, from a timer")
    func delayedAdd() async throws {
        let queue = WorkQueue<String>()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await queue.runTimers() }
            let start = ContinuousClock.now
            queue.add("later", after: .milliseconds(300))
            queue.add("later", after: .seconds(5))  // a later time does not replace an earlier one
            let key = await queue.next()
            let elapsed = ContinuousClock.now - start
            #expect(key == "later")
            #expect(elapsed >= .milliseconds(300))
            #expect(elapsed < .seconds(1))
            queue.shutDown()
            group.cancelAll()
        }
    }
}

