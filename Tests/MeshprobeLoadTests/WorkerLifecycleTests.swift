import Testing

@testable import MeshprobeLoad

/// The worker's stages on instants handed in: what each event asks the worker to do, and what it refuses.
@Suite struct WorkerLifecycleTests {
    @Test func theClosedModelRunsAtOnceAndItsClockHasBegun() {
        var life = WorkerLifecycle()
        #expect(life.start(hasWork: true, waitsForConnections: false) == .connect(awaitingThem: false))
        #expect(life.stage == .running)
        #expect(life.begun)
        let settled = life.connectionsSettled()
        #expect(!settled, "only a connecting worker begins on its connections")
    }

    @Test func theOpenModelBeginsOnceWhenItsConnectionsSettle() {
        var life = WorkerLifecycle()
        #expect(life.start(hasWork: true, waitsForConnections: true) == .connect(awaitingThem: true))
        #expect(life.isConnecting && !life.begun && !life.isStopping)
        let first = life.connectionsSettled()
        let second = life.connectionsSettled()
        #expect(first && !second, "the connect timeout after the last connection came up begins nothing again")
        #expect(life.stage == .running && life.begun)
    }

    @Test func aWorkerWithNothingToDoFinishesAtOnce() {
        var life = WorkerLifecycle()
        #expect(life.start(hasWork: false, waitsForConnections: true) == .finish)
        let finished = life.finish()
        #expect(finished && life.isFinished && life.isStopping)
    }

    @Test func aStopBeforeTheStartLeavesNothingToDo() {
        var life = WorkerLifecycle()
        let stopped = life.stop(at: 100, grace: 50)
        #expect(stopped)
        #expect(life.start(hasWork: true, waitsForConnections: false) == .finish)
    }

    @Test func aStopWhileConnectingNeverBeginsTheArrivals() {
        var life = WorkerLifecycle()
        _ = life.start(hasWork: true, waitsForConnections: true)
        let stopped = life.stop(at: 1_000, grace: 500)
        #expect(stopped && life.isStopping)
        let settled = life.connectionsSettled()
        #expect(!settled && !life.begun, "the clock never started: no second is finished")
    }

    @Test func aStopStopsOnceAndDrainsUntilItsGraceIsOver() {
        var life = WorkerLifecycle()
        _ = life.start(hasWork: true, waitsForConnections: false)
        #expect(!life.drainIsOver(at: .max), "a running worker has no drain deadline")
        let first = life.stop(at: 1_000, grace: 500)
        let second = life.stop(at: 1_200, grace: 0)
        #expect(first && !second, "a second stop neither restarts nor shortens the grace")
        #expect(!life.drainIsOver(at: 1_499))
        #expect(life.drainIsOver(at: 1_500))
    }

    @Test func aWorkerFinishesOnceAndThenRefusesEverything() {
        var life = WorkerLifecycle()
        _ = life.start(hasWork: true, waitsForConnections: true)
        let first = life.finish()
        let second = life.finish()
        #expect(first && !second, "the result is handed over once")
        let stopped = life.stop(at: 10, grace: 10)
        let settled = life.connectionsSettled()
        #expect(!stopped && !settled && !life.drainIsOver(at: .max))
    }
}
