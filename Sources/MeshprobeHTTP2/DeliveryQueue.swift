/// Items collected inside nghttp2 callbacks, delivered once nghttp2 has returned, in order.
///
/// Delivery may re-enter (a delegate that sends, flushes or closes causes another `drain`): the inner drain goes
/// on from where the outer one is, and the storage is reused once the outermost drain ends.
final class DeliveryQueue<Element> {
    private var items: [Element] = []
    private var cursor = 0
    private var depth = 0

    init(capacity: Int = 64) {
        items.reserveCapacity(capacity)
    }

    /// Nothing left to deliver.
    var isEmpty: Bool { cursor >= items.count }

    func append(_ item: Element) {
        items.append(item)
    }

    func drain(_ deliver: (Element) -> Void) {
        depth += 1
        while cursor < items.count {
            let item = items[cursor]
            cursor += 1
            deliver(item)
        }
        depth -= 1
        if depth == 0 {
            items.removeAll(keepingCapacity: true)
            cursor = 0
        }
    }
}
