import Foundation
import MeshprobeTLS
import NIOCore
import Testing

/// Addresses and listen failures as meshprobe prints them.
@Suite struct SocketTextTests {
    @Test func addressesReadAsPeopleWriteThem() throws {
        #expect(try SocketAddress(ipAddress: "127.0.0.1", port: 9441).text == "127.0.0.1:9441")
        #expect(try SocketAddress(ipAddress: "::1", port: 9441).text == "[::1]:9441")
    }

    @Test func aListenFailureNamesTheAddressAndTheReasonOnly() {
        #expect(listenFailure("127.0.0.1:9441", IOError(errnoCode: EADDRINUSE, reason: "bind(descriptor:ptr:bytes:)"))
            == "cannot listen on 127.0.0.1:9441: in use by another process")
        #expect(listenFailure("0.0.0.0:80", IOError(errnoCode: EACCES, reason: "bind"))
            == "cannot listen on 0.0.0.0:80: permission denied (ports below 1024 need privileges)")
        #expect(listenFailure("127.0.0.1:1", IOError(errnoCode: ENOBUFS, reason: "bind")) == "cannot listen on 127.0.0.1:1: \(String(cString: strerror(ENOBUFS)))")
    }
}
