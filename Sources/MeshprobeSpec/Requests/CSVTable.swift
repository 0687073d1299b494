/// A CSV file for `{{csv:COLUMN}}`: a header row, then data rows (RFC 4180 quoting).
public struct CSVTable: Sendable, Equatable {
    public var header: [String]
    public var rows: [[String]]

    public init(parsing text: String, source: String) throws(LoadPlanError) {
        var records: [[String]] = []
        var record: [String] = []
        var field = ""
        var inQuotes = false
        var line = 1
        var chars = Array(text)[...]
        while let c = chars.popFirst() {
            if inQuotes {
                if c == "\"" {
                    if chars.first == "\"" { field.append("\""); chars = chars.dropFirst() } else { inQuotes = false }
                } else {
                    if c == "\n" { line += 1 }
                    field.append(c)
                }
                continue
            }
            switch c {
            case "\"" where field.isEmpty: inQuotes = true
            case ",": record.append(field); field = ""
            case "\r": continue
            case "\n", "\r\n":
                record.append(field)
                field = ""
                if !(record.count == 1 && record[0].isEmpty) { records.append(record) }
                record = []
                line += 1
            default: field.append(c)
            }
        }
        if inQuotes { throw LoadPlanError(field: source, value: "line \(line)", reason: "a quoted field is not closed") }
        if !field.isEmpty || !record.isEmpty {
            record.append(field)
            records.append(record)
        }
        guard let header = records.first else {
            throw LoadPlanError(field: source, value: "", reason: "the CSV file is empty: it needs a header row and at least one data row")
        }
        guard records.count >= 2 else {
            throw LoadPlanError(field: source, value: "", reason: "the CSV file has a header but no data rows")
        }
        self.header = header
        self.rows = Array(records.dropFirst())
    }
}
