import MeshprobeSVIDSource
import Testing

@Suite struct SVIDFileWatchStateMachineTests {
    typealias Fingerprint = SVIDFileWatchStateMachine.Fingerprint
    let cert = Fingerprint(inode: 1, modified: 100, size: 900)
    let key = Fingerprint(inode: 2, modified: 100, size: 240)

    @Test func doesNothingWhileTheFilesAreAsRead() {
        var machine = SVIDFileWatchStateMachine(initial: [cert, key])
        #expect(machine.polled([cert, key]) == .none)
    }

    @Test func reloadsWhenAFileIsRenamedOverAndRotatesWhenItLoads() {
        var machine = SVIDFileWatchStateMachine(initial: [cert, key])
        let renamed = Fingerprint(inode: 7, modified: 100, size: 900)
        #expect(machine.polled([renamed, key]) == .reload)
        // A poll during the reload starts no second one.
        #expect(machine.polled([renamed, key]) == .none)
        #expect(machine.reloaded() == .rotated)
        #expect(machine.polled([renamed, key]) == .none)
    }

    @Test func keepsTheOldIdentityOnAHalfWrittenFileReportsItOnceAndTriesTheNextChange() {
        var machine = SVIDFileWatchStateMachine(initial: [cert, key])
        let half = Fingerprint(inode: 2, modified: 200, size: 40)
        #expect(machine.polled([cert, half]) == .reload)
        #expect(machine.reloadFailed("key.pem does not parse") == .report("key.pem does not parse"))
        // The same half-written file is not read again...
        #expect(machine.polled([cert, half]) == .none)
        // ...the finished one is.
        let whole = Fingerprint(inode: 2, modified: 300, size: 240)
        #expect(machine.polled([cert, whole]) == .reload)
        #expect(machine.reloaded() == .rotated)
    }

    @Test func treatsAMissingFileAsAChange() {
        var machine = SVIDFileWatchStateMachine(initial: [cert, key])
        #expect(machine.polled([cert, nil]) == .reload)
        #expect(machine.reloadFailed("no key.pem") == .report("no key.pem"))
        #expect(machine.polled([cert, key]) == .reload)
    }

    @Test func ignoresOutcomesWithoutAReload() {
        var machine = SVIDFileWatchStateMachine(initial: [cert])
        #expect(machine.reloaded() == .none)
        #expect(machine.reloadFailed("x") == .none)
    }
}
