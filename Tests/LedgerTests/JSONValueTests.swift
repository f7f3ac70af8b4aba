import Ledger
import Testing

@Suite("JSON values")
struct JSONValueTests {
    @Test func everyKindParsesAndNumbersKeepTheirText() throws {
        let v = try JSONValue(parsing: Array(#" {"s":"a\u00e9\n","n":-1.50e+3,"i":42,"t":true,"f":false,"z":null,"a":[1,[2]],"o":{}} "#.utf8))
        #expect(v["s"] == .string("aé\n"))
        #expect(v["n"] == .number("-1.50e+3") && v["n"]?.doubleValue == -1500)
        #expect(v["i"]?.int64Value == 42 && v["t"] == true && v["f"] == false && v["z"] == .null)
        #expect(v["a"] == [1, [2]] && v["o"] == .object([:]))
        #expect(v["missing"] == nil, "an absent key is nil, not null")
    }

    @Test(arguments: [
        ("9223372036854775807", Result<Int64, JSONValue.IntegerProblem>.success(.max)),
        ("-9223372036854775808", .success(.min)),
        ("9223372036854775808", .failure(.outOfRange)),
        ("1e30", .failure(.outOfRange)),
        ("1.5", .failure(.notInteger)),
        ("2.0", .success(2)),
        ("1e3", .success(1000)),
    ])
    func integersNeverWrapAround(text: String, expected: Result<Int64, JSONValue.IntegerProblem>) throws {
        let value = try JSONValue(parsing: Array(text.utf8))
        switch (value.integer(), expected) {
        case let (.success(a), .success(b)): #expect(a == b)
        case let (.failure(a), .failure(b)): #expect(a == b)
        default: Issue.record("\(text): \(value.integer()) is not \(expected)")
        }
    }

    @Test func messagesAreReadAsStrictlyAsPayloads() {
        for (text, reason) in [(#"{"a":1,"a":2}"#, "duplicate key"), ("[1,]", "trailing comma"), ("01", "leading zero"),
                               ("NaN", "unexpected character 'N'"), ("", "empty text"), ("{} x", "after the value"), (#""\ud800""#, "lone high surrogate")] {
            do {
                _ = try JSONValue(parsing: Array(text.utf8))
                Issue.record("\(text) was accepted")
            } catch {
                #expect(error.reason.contains(reason), "\(text): \(error)")
            }
        }
        let deep = String(repeating: "[", count: StrictJSON.maxMessageDepth + 1) + String(repeating: "]", count: StrictJSON.maxMessageDepth + 1)
        #expect(throws: StrictJSON.Problem.self) { try JSONValue(parsing: Array(deep.utf8)) }
    }

    @Test func literalsBuildValues() {
        let v: JSONValue = ["a": [1, "x", true, 2.5], "b": .int(UInt64.max)]
        #expect(v["a"]?.arrayValue?.count == 4 && v["b"] == .number("18446744073709551615"))
        #expect(v["b"]?.int64Value == nil, "beyond Int64 is not an Int64")
    }
}
