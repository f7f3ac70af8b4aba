import Ledger
import Testing

/// Payloads are spliced raw into every response, so anything a strict reader would refuse must be
/// refused at ingest. These are our own fixtures of the classic reject cases.
@Suite("Strict RFC 8259 payloads")
struct StrictJSONTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let bytes: [UInt8]
        let reason: String
        var testDescription: String { name }
        init(_ name: String, _ text: String, _ reason: String) { self.init(name, Array(text.utf8), reason) }
        init(_ name: String, _ bytes: [UInt8], _ reason: String) { self.name = name; self.bytes = bytes; self.reason = reason }
    }

    static let rejected: [Case] = [
        Case("trailing comma in an object", #"{"a":1,}"#, "trailing comma before '}'"),
        Case("trailing comma in an array", #"{"a":[1,2,]}"#, "trailing comma before ']'"),
        Case("leading zero", #"{"a":01}"#, "leading zero"),
        Case("negative leading zero", #"{"a":-012}"#, "leading zero"),
        Case("NaN", #"{"a":NaN}"#, "unexpected character 'N', expected a value"),
        Case("Infinity", #"{"a":Infinity}"#, "expected a value"),
        Case("minus Infinity", #"{"a":-Infinity}"#, "needs digits"),
        Case("lone high surrogate", #"{"a":"\ud800"}"#, "lone high surrogate"),
        Case("lone low surrogate", #"{"a":"\udc00x"}"#, "lone low surrogate"),
        Case("high surrogate then a letter", #"{"a":"\ud800\u0041"}"#, "not followed by a low one"),
        Case("raw tab in a string", "{\"a\":\"x\ty\"}", "control character"),
        Case("raw newline in a string", "{\"a\":\"x\ny\"}", "control character"),
        Case("NUL in a string", [0x7B, 0x22, 0x61, 0x22, 0x3A, 0x22, 0x00, 0x22, 0x7D], "NUL byte"),
        Case("UTF-16 LE text", Array("{\"a\":1}".utf16.flatMap { [UInt8($0 & 0xff), UInt8($0 >> 8)] }), "NUL byte"),
        Case("UTF-16 with a BOM", [0xFF, 0xFE] + Array("{\"a\":1}".utf16.flatMap { [UInt8($0 & 0xff), UInt8($0 >> 8)] }), "UTF-16"),
        Case("UTF-32 BE text", Array("{}".unicodeScalars.flatMap { s -> [UInt8] in let v = s.value; return [UInt8(v >> 24), UInt8((v >> 16) & 0xff), UInt8((v >> 8) & 0xff), UInt8(v & 0xff)] }), "NUL byte"),
        Case("UTF-8 byte-order mark", [0xEF, 0xBB, 0xBF] + Array("{}".utf8), "byte-order mark"),
        Case("duplicate keys", #"{"a":1,"a":2}"#, "duplicate key \"a\""),
        Case("duplicate keys once escaped", #"{"a":1,"\u0061":2}"#, "duplicate key \"a\""),
        Case("duplicate keys nested", #"{"o":{"k":1,"k":1}}"#, "duplicate key \"k\""),
        Case("single quotes", "{'a':1}", "expected a string key"),
        Case("unquoted key", "{a:1}", "expected a string key"),
        Case("comment", #"{"a":1 /* c */}"#, "expected '}'"),
        Case("invalid escape", #"{"a":"\x41"}"#, "invalid escape"),
        Case("overlong UTF-8", [0x7B, 0x22, 0x61, 0x22, 0x3A, 0x22, 0xC0, 0xAF, 0x22, 0x7D], "invalid UTF-8"),
        Case("UTF-8-encoded surrogate", [0x7B, 0x22, 0x61, 0x22, 0x3A, 0x22, 0xED, 0xA0, 0x80, 0x22, 0x7D], "invalid UTF-8"),
        Case("truncated UTF-8", [0x7B, 0x22, 0x61, 0x22, 0x3A, 0x22, 0xE2, 0x82, 0x22, 0x7D], "invalid UTF-8"),
        Case("an array, not an object", "[1,2]", "expected a JSON object"),
        Case("a string, not an object", #""text""#, "expected a JSON object"),
        Case("empty", "", "empty text"),
        Case("two objects", "{}{}", "unexpected text after the object"),
        Case("unterminated", #"{"a":"#, "unexpected end"),
        Case("a fraction without digits", #"{"a":1.}"#, "digits after '.'"),
        Case("an exponent without digits", #"{"a":1e}"#, "digits in its exponent"),
        Case("plus sign", #"{"a":+1}"#, "expected a value"),
        Case("too deep", String(repeating: #"{"a":"#, count: 40) + "1" + String(repeating: "}", count: 40), "nested deeper than 32"),
    ]

    static let accepted: [String] = [
        "{}", " {\"a\" : [ ] } \n", #"{"a":-0.5e+10,"b":0,"c":1E-2,"d":[true,false,null]}"#,
        #"{"s":"\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00","é":"🙂"}"#,
        String(repeating: #"{"a":"#, count: 32) + "1" + String(repeating: "}", count: 32),
    ]

    @Test(arguments: rejected)
    func refused(_ c: Case) {
        do {
            try StrictJSON.validateObject(c.bytes)
            Issue.record("accepted: \(c.name)")
        } catch {
            #expect(error.description.contains(c.reason), "\(c.name): \(error)")
        }
    }

    @Test(arguments: accepted)
    func strictJSONIsAccepted(_ text: String) throws {
        try StrictJSON.validateObject(Array(text.utf8))
    }

    @Test func theProblemNamesTheByteOffset() {
        #expect(throws: StrictJSON.Problem(offset: 7, reason: "trailing comma before '}'")) {
            try StrictJSON.validateObject(Array(#"{"a":1,}"#.utf8))
        }
    }
}
