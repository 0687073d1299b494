import NIOCore
import NIOHTTP1

/// Receives the outcome of HTTP/1.1 requests on one keep-alive connection.
package protocol HTTP1ClientDelegate: AnyObject {
    func http1Response(token: UInt64, status: Int, headers: HTTPHeaders, body: ByteBuffer?, keepAlive: Bool)
    func http1Closed(error: (any Error)?)
}

/// One request at a time over NIOHTTP1's client codec, keep-alive.
package final class HTTP1ClientHandler: ChannelDuplexHandler, RemovableChannelHandler {
    package typealias InboundIn = HTTPClientResponsePart
    package typealias OutboundIn = Never
    package typealias OutboundOut = HTTPClientRequestPart

    package weak var delegate: (any HTTP1ClientDelegate)?
    private var context: ChannelHandlerContext?
    private var inFlight: UInt64?
    private var responseHead: HTTPResponseHead?
    private var bodyLength = 0
    private let collectBody: Bool
    private var body: ByteBuffer?

    /// Bytes kept from the start of a 4xx/5xx response's body when bodies are not collected.
    package static let errorBodyPrefix = 512
    /// The most of a body kept for extraction.
    private let maxCollectedBodyBytes: Int

    package struct ResponseBodyTooLarge: Error, CustomStringConvertible {
        package var limit: Int
        package var description: String { "the response body passed \(limit >> 20) MiB, the most kept for extraction: the request failed and the connection was closed" }
    }

    package init(collectBody: Bool = false, maxCollectedBodyBytes: Int) {
        self.collectBody = collectBody
        self.maxCollectedBodyBytes = maxCollectedBodyBytes
    }
    private var closed = false

    package var isUsable: Bool { context != nil && !closed }
    package var availableStreams: Int { isUsable && inFlight == nil ? 1 : 0 }

    package func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    package func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    package func send(method: String, authority: String, path: String, headers: [(name: String, value: String)], body: ByteBuffer?,
              token: UInt64) -> Bool {
        guard let context, availableStreams > 0 else { return false }
        inFlight = token
        var h = HTTPHeaders()
        h.reserveCapacity(headers.count + 2)
        h.add(name: "host", value: authority)
        for (name, value) in headers where name != "content-length" { h.add(name: name, value: value) }
        if let body { h.add(name: "content-length", value: String(body.readableBytes)) }
        let head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method), uri: path, headers: h)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if let body, body.readableBytes > 0 { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        return true
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            responseHead = head
            bodyLength = 0
            body = nil
        case .body(let buffer):
            bodyLength += buffer.readableBytes
            if collectBody {
                // A body kept for extraction is bounded as on HTTP/2: a server that never stops sending must not
                // take the generator's memory (the request fails; the connection goes).
                guard bodyLength <= maxCollectedBodyBytes else {
                    body = nil
                    context.fireErrorCaught(ResponseBodyTooLarge(limit: maxCollectedBodyBytes))
                    context.close(promise: nil)
                    return
                }
                var chunk = buffer
                body.setOrWriteBuffer(&chunk)
            } else if let head = responseHead, head.status.code >= 400 {
                // The start of an error page is kept: a proxy's reply says there why it refused.
                let room = Self.errorBodyPrefix - (body?.readableBytes ?? 0)
                if room > 0, var chunk = buffer.getSlice(at: buffer.readerIndex, length: min(room, buffer.readableBytes)) {
                    body.setOrWriteBuffer(&chunk)
                }
            }
        case .end:
            guard let head = responseHead, let token = inFlight else { return }
            responseHead = nil
            inFlight = nil
            let collected = body
            body = nil
            delegate?.http1Response(token: token, status: Int(head.status.code), headers: head.headers,
                                    body: collected, keepAlive: head.isKeepAlive)
        }
    }

    package func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    package func channelInactive(context: ChannelHandlerContext) {
        closed = true
        delegate?.http1Closed(error: nil)
        context.fireChannelInactive()
    }

    /// The token of the request in flight, if any.
    package var pendingToken: UInt64? { inFlight }
}
