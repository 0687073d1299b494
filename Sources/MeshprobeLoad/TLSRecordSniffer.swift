import NIOCore

/// Sits first in a plaintext (`http://`) connection's pipeline until the peer's first bytes, then leaves it: a TLS
/// record there (an alert or a handshake: 0x15 or 0x16, then the major version 0x03) means the port serves TLS,
/// which the HTTP parsers would only call a protocol error. Per connection, never per request.
final class TLSRecordSniffer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let owner: LoadConnection
    private var answered = false

    init(owner: LoadConnection) {
        self.owner = owner
    }

    /// The bytes begin with a TLS alert or handshake record's header.
    static func startsWithTLSRecord(_ bytes: ByteBuffer) -> Bool {
        guard let type = bytes.getInteger(at: bytes.readerIndex, as: UInt8.self),
              let major = bytes.getInteger(at: bytes.readerIndex + 1, as: UInt8.self) else { return false }
        return (type == 0x15 || type == 0x16) && major == 0x03
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !answered else {
            context.fireChannelRead(data)
            return
        }
        answered = true
        if Self.startsWithTLSRecord(unwrapInboundIn(data)) {
            owner.peerAnsweredWithTLS()
            return
        }
        context.fireChannelRead(data)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !answered { owner.peerClosedWithoutAByte() }
        context.fireChannelInactive()
    }
}
