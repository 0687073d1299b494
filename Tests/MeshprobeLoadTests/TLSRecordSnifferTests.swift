import NIOCore
import Testing
@testable import MeshprobeLoad

/// A plaintext connection's first bytes: a TLS alert or handshake record names the port as a TLS one; HTTP/2
/// frames and HTTP/1.1 answers do not.
@Suite struct TLSRecordSnifferTests {
    func starts(_ bytes: [UInt8]) -> Bool { TLSRecordSniffer.startsWithTLSRecord(ByteBuffer(bytes: bytes)) }

    @Test func aTLSAlertOrHandshakeRecordIsTLS() {
        #expect(starts([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46]))
        #expect(starts([0x16, 0x03, 0x01, 0x00, 0x50]))
    }

    @Test func http2FramesHTTP1AnswersAndShortReadsAreNot() {
        #expect(!starts([0x00, 0x00, 0x06, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00]))  // SETTINGS
        #expect(!starts(Array("HTTP/1.1 400 Bad Request\r\n".utf8)))
        #expect(!starts([0x15]))
        #expect(!starts([0x17, 0x03, 0x03]))  // application data: never the first record of a server
    }
}
