import MeshprobeIdentity

/// HTTP/2 write coalescing's longest hold, as a flag or file sets it: a duration of at most `maximum`, or `0` (or
/// `off`) to turn coalescing off.
public enum CoalesceWindow {
    /// The longest window: it delays requests by up to this much (seconds).
    public static let maximum = 0.1

    /// Parses the window, in seconds (0: off).
    public static func seconds(parsing text: String) throws(InputValueError) -> Double {
        if text == "off" { return 0 }
        let window = try TimeSpan(parsing: text, allowZero: true).seconds
        guard window <= maximum else {
            throw InputValueError("'\(text)': at most 100ms (it delays requests by up to this much); 0 turns it off")
        }
        return window
    }
}
