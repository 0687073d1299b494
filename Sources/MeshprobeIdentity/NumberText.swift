/// A number as a user wrote it: `50`, not `50.0`; `12.5` stays.
package func numberText(_ value: Double) -> String {
    value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
}

/// A count with its noun, singular for one: `1 request`, `2 requests`, `0 requests`.
package func counted(_ count: Int, _ noun: String, plural: String? = nil) -> String {
    "\(count) \(count == 1 ? noun : plural ?? noun + "s")"
}
