/// A number as a user wrote it: `50`, not `50.0`; `12.5` stays.
package func numberText(_ value: Double) -> String {
    value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
}
