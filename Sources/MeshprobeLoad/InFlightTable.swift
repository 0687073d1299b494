/// The requests in flight on one connection, by token: a slot array with a free list instead of a dictionary.
///
/// A token is the slot's index in the low 32 bits and the slot's use count in the high 32 bits, so a token
/// handed back after its slot was reused (a late or repeated report) finds nothing instead of another request.
/// Hashing a token and inserting and deleting it in a dictionary cost more per request than the rest of this.
struct InFlightTable {
    private var slots: [(generation: UInt32, ticket: LoadWorker.Ticket?)] = []
    private var free: [Int] = []
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    /// Stores `ticket` and returns its token.
    mutating func insert(_ ticket: LoadWorker.Ticket) -> UInt64 {
        let index: Int
        if let reused = free.popLast() {
            index = reused
            slots[index].generation &+= 1
            slots[index].ticket = ticket
        } else {
            index = slots.count
            slots.append((0, ticket))
        }
        count += 1
        return UInt64(slots[index].generation) << 32 | UInt64(index)
    }

    /// Removes and returns the ticket of `token`, or nil if it is not in flight (any more).
    mutating func remove(_ token: UInt64) -> LoadWorker.Ticket? {
        guard let index = slot(of: token), let ticket = slots[index].ticket else { return nil }
        slots[index].ticket = nil
        free.append(index)
        count -= 1
        return ticket
    }

    /// The request of `token` was written only at `t` (write coalescing held it): its send time becomes `t`, and
    /// so does its intended time when `intendedToo` (the closed model, where a request is meant to leave when sent).
    mutating func markWritten(_ token: UInt64, at t: UInt64, intendedToo: Bool) {
        guard let index = slot(of: token), slots[index].ticket != nil else { return }
        slots[index].ticket!.sent = t
        if intendedToo { slots[index].ticket!.intended = t }
    }

    /// The slot `token` names, if that slot has not been reused since (its generation still matches).
    @inline(__always) private func slot(of token: UInt64) -> Int? {
        let index = Int(truncatingIfNeeded: token & 0xFFFF_FFFF)
        guard index < slots.count, slots[index].generation == UInt32(truncatingIfNeeded: token >> 32) else { return nil }
        return index
    }

    /// Every ticket in flight, in slot order (the table is unchanged).
    var tickets: [LoadWorker.Ticket] { slots.compactMap(\.ticket) }

    /// The tokens of the tickets for which `condition` holds, in slot order.
    func tokens(where condition: (LoadWorker.Ticket) -> Bool) -> [UInt64] {
        slots.indices.compactMap { index in
            guard let ticket = slots[index].ticket, condition(ticket) else { return nil }
            return UInt64(slots[index].generation) << 32 | UInt64(index)
        }
    }

    mutating func removeAll() {
        for index in slots.indices where slots[index].ticket != nil {
            slots[index].ticket = nil
            free.append(index)
        }
        count = 0
    }
}
