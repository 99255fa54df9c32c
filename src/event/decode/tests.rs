use super::*;
use crate::event::RejectReason::*;

fn decoder() -> Decoder {
    Decoder::new(Arc::new(Catalog::default()), Limits::default())
}

const GOOD: &str = r#"{"id":"e1","type":"export_ban","occurred_at":"2025-04-15T00:00:00Z","vendors":["nvidia","amd"],"products":["H20","MI308"],"severity":0.8,"confidence":0.9,"actor":"US Commerce (BIS)","title":"Licence requirement for H20","source_url":"https://example.org/x","schema_version":1,"extra":{"ignored":[1,2,3]}}"#;

#[test]
fn a_complete_event_decodes_with_every_field() {
    let e = decoder().decode(GOOD.as_bytes()).unwrap();
    assert_eq!(e.id, "e1");
    assert_eq!(e.kind, EventType::ExportBan);
    assert_eq!(e.occurred_at.to_string(), "2025-04-15T00:00:00Z");
    assert_eq!(e.vendors.len(), 2);
    assert_eq!(e.products, ["H20", "MI308"]);
    assert_eq!(e.severity, Some(0.8));
    assert_eq!(e.confidence, 0.9);
    assert_eq!(e.title.as_deref(), Some("Licence requirement for H20"));
}

#[test]
fn strings_without_escapes_borrow_from_the_input() {
    let e = decoder().decode(GOOD.as_bytes()).unwrap();
    assert!(matches!(e.id, Cow::Borrowed(_)));
    assert!(matches!(e.title, Some(Cow::Borrowed(_))));
}

#[test]
fn optional_fields_default_and_null_means_absent() {
    let e = decoder()
        .decode(br#"{"id":"x","type":"market_signal","occurred_at":"2025-01-01T00:00:00Z","vendors":["nvidia"],"value":-0.5,"title":null,"products":null}"#)
        .unwrap();
    assert_eq!(e.severity, None);
    assert_eq!(e.confidence, 1.0);
    assert_eq!(e.value, Some(-0.5));
    assert_eq!(e.title, None);
    assert!(e.products.is_empty());
}

/// Each bad input, the reason it must get, and a fragment its message must
/// contain (the field name, mostly).
const BAD: &[(&str, RejectReason, &str)] = &[
    ("", MalformedJson, "EOF"),
    ("{", MalformedJson, "EOF"),
    (r#"{"id":"x""#, MalformedJson, "EOF"),
    ("[1,2]", MalformedJson, "JSON object"),
    ("42", MalformedJson, "JSON object"),
    ("\"event\"", MalformedJson, "JSON object"),
    ("null", MalformedJson, "JSON object"),
    (r#"{"id":"a","id":"b"}"#, MalformedJson, "id: duplicate key"),
    (r#"{"zz":1,"zz":2}"#, MalformedJson, "zz: duplicate key"),
    (r#"{"id":"a"} {"id":"b"}"#, MalformedJson, "trailing"),
    (r#"{"id":"a"}x"#, MalformedJson, "trailing"),
    (
        r#"{"id":"a","x":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}"#,
        LimitExceeded,
        "x: nested deeper than 32",
    ),
    (r#"{"id":"a","x":{"y":[{"z":[1,{"w":[[["#, MalformedJson, "EOF"),
    (r#"{"id":"a","severity":NaN}"#, MalformedJson, "line 1"),
    (r#"{"id":"a","severity":Infinity}"#, MalformedJson, "line 1"),
    (r#"{"id":"a","severity":1e999}"#, MalformedJson, "out of range"),
    ("{\"id\":\"a\u{1}\"}", MalformedJson, "control character"),
    (r#"{"type":"export_ban","occurred_at":"2025-01-01T00:00:00Z","vendors":["nvidia"]}"#, MissingField, "id:"),
    (r#"{"id":"a","occurred_at":"2025-01-01T00:00:00Z","vendors":["nvidia"]}"#, MissingField, "type:"),
    (r#"{"id":"a","type":"export_ban","vendors":["nvidia"]}"#, MissingField, "occurred_at:"),
    (r#"{"id":"a","type":"export_ban","occurred_at":"2025-01-01T00:00:00Z"}"#, MissingField, "vendors:"),
    (
        r#"{"id":"a","type":"market_signal","occurred_at":"2025-01-01T00:00:00Z","vendors":["nvidia"]}"#,
        MissingField,
        "value:",
    ),
    (
        r#"{"id":7,"type":"export_ban","occurred_at":"2025-01-01T00:00:00Z","vendors":["nvidia"]}"#,
        InvalidField,
        "id: invalid type: integer",
    ),
    (
        r#"{"id":null,"type":"export_ban","occurred_at":"2025-01-01T00:00:00Z","vendors":["nvidia"]}"#,
        InvalidField,
        "id:",
    ),
    (
        r#"{"id":"","type":"export_ban","occurred_at":"2025-01-01T00:00:00Z","vendors":["nvidia"]}"#,
        InvalidField,
        "id: must not be empty",
    ),
    (
        r#"{"id":"a\u0007","type":"export_ban","occurred_at":"2025-01-01T00:00:00Z","vendors":["nvidia"]}"#,
        InvalidField,
        "id: contains the control character U+0007",
    ),
    (
        r#"{"id":"a","type":["export_ban"],"occurred_at":"2025-01-01T00:00:00Z","vendors":["nvidia"]}"#,
        InvalidField,
        "type:",
    ),
    (r#"{"id":"a","type":"export_ban","occurred_at":1700000000,"vendors":["nvidia"]}"#, InvalidField, "occurred_at:"),
    (
        r#"{"id":"a","type":"export_ban","occurred_at":"yesterday","vendors":["nvidia"]}"#,
        InvalidField,
        "occurred_at: \"yesterday\" is not an RFC 3339",
    ),
    (
        r#"{"id":"a","type":"export_ban","occurred_at":"2025-01-01T00:00:00Z","vendors":"nvidia"}"#,
        InvalidField,
        "vendors:",
    ),
    (
        r#"{"id":"a","type":"export_ban","occurred_at":"2025-01-01T00:00:00Z","vendors":["nvidia",3]}"#,
        InvalidField,
        "vendors:",
    ),
    (
        r#"{"id":"a","type":"export_ban","occurred_at":"2025-01-01T00:00:00Z","vendors":[]}"#,
        InvalidField,
        "vendors: must name at least one",
    ),
    (
        r#"{"id":"a","type":"export_ban","occurred_at":"2025-01-01T00:00:00Z","vendors":["nvidia","nvidia"]}"#,
        InvalidField,
        "vendors[1]",
    ),
    (
        r#"{"id":"a","type":"export_ban","occurred_at":"2025-01-01T00:00:00Z","vendors":["nvidia"],"products":"H20"}"#,
        InvalidField,
        "products:",
    ),
    (
        r#"{"id":"a","type":"export_ban","occurred_at":"2025-01-01T00:00:00Z","vendors":["nvidia"],"products":[" "]}"#,
        InvalidField,
        "products[0]: must not be blank",
    ),
    (
        r#"{"id":"a","type":"export_ban","occurred_at":"2025-01-01T00:00:00Z","vendors":["nvidia"],"severity":"high"}"#,
        InvalidField,
        "severity:",
    ),
    (
        r#"{"id":"a","type":"export_ban","occurred_at":"2025-01-01T00:00:00Z","vendors":["nvidia"],"confidence":true}"#,
        InvalidField,
        "confidence:",
    ),
    (
        r#"{"id":"a","type":"export_ban","occurred_at":"2025-01-01T00:00:00Z","vendors":["nvidia"],"title":{}}"#,
        InvalidField,
        "title:",
    ),
    (
        r#"{"id":"a","type":"export_ban","occurred_at":"2025-01-01T00:00:00Z","vendors":["nvidia"],"value":0.5}"#,
        InvalidField,
        "value: only market_signal",
    ),
    (
        r#"{"id":"a","type":"export_ban","occurred_at":"2025-01-01T00:00:00Z","vendors":["nvidia"],"schema_version":"1"}"#,
        InvalidField,
        "schema_version:",
    ),
    (
        r#"{"id":"a","type":"export_ban","occurred_at":"2025-01-01T00:00:00Z","vendors":["nvidia"],"schema_version":-1}"#,
        InvalidField,
        "schema_version:",
    ),
    (
        r#"{"id":"a","type":"export_bans","occurred_at":"2025-01-01T00:00:00Z","vendors":["nvidia"]}"#,
        UnknownType,
        "type: \"export_bans\"",
    ),
    (
        r#"{"id":"a","type":"export_ban","occurred_at":"2025-01-01T00:00:00Z","vendors":["nvidia","tsmc"]}"#,
        UnknownVendor,
        "vendors[1]: \"tsmc\"",
    ),
    (
        r#"{"id":"a","type":"export_ban","occurred_at":"2025-01-01T00:00:00Z","vendors":["nvidia"],"severity":1.5}"#,
        OutOfRange,
        "severity: 1.5",
    ),
    (
        r#"{"id":"a","type":"export_ban","occurred_at":"2025-01-01T00:00:00Z","vendors":["nvidia"],"severity":-0.1}"#,
        OutOfRange,
        "severity:",
    ),
    (
        r#"{"id":"a","type":"export_ban","occurred_at":"2025-01-01T00:00:00Z","vendors":["nvidia"],"confidence":2}"#,
        OutOfRange,
        "confidence:",
    ),
    (
        r#"{"id":"a","type":"market_signal","occurred_at":"2025-01-01T00:00:00Z","vendors":["nvidia"],"value":-1.01}"#,
        OutOfRange,
        "value:",
    ),
    (
        r#"{"id":"a","type":"export_ban","occurred_at":"3000-01-01T00:00:00Z","vendors":["nvidia"]}"#,
        OutOfRange,
        "occurred_at:",
    ),
    (
        r#"{"id":"a","type":"export_ban","occurred_at":"2025-01-01T00:00:00Z","vendors":["nvidia"],"schema_version":2}"#,
        UnsupportedSchemaVersion,
        "schema_version: 2",
    ),
];

#[test]
fn every_bad_input_gets_its_reason_and_a_message_naming_the_problem() {
    let d = decoder();
    for (input, reason, fragment) in BAD {
        let r = d.decode(input.as_bytes()).expect_err(input);
        assert_eq!(r.reason, *reason, "{input} → {r}");
        assert!(r.message.contains(fragment), "{input} → {r:?} should mention {fragment:?}");
    }
}

#[test]
fn invalid_utf8_is_its_own_reason() {
    let r = decoder().decode(b"{\"id\":\"\xff\"}").unwrap_err();
    assert_eq!(r.reason, InvalidUtf8);
    assert!(r.message.contains("byte 7"), "{r}");
}

#[test]
fn oversized_messages_and_fields_hit_their_limits() {
    let limits =
        Limits { max_event_bytes: 400, max_vendors: 2, max_products: 1, max_product_chars: 3, max_text_chars: 5 };
    let d = Decoder::new(Arc::new(Catalog::default()), limits);
    let base = r#""id":"a","type":"export_ban","occurred_at":"2025-01-01T00:00:00Z""#;
    let cases = [
        (format!("{{{base},\"vendors\":[\"nvidia\"],\"title\":\"{}\"}}", "x".repeat(400)), TooLarge, "limit is 400"),
        (format!("{{{base},\"vendors\":[\"nvidia\",\"amd\",\"intel\"]}}"), LimitExceeded, "vendors: 3 entries"),
        (
            format!("{{{base},\"vendors\":[\"nvidia\"],\"products\":[\"a\",\"b\"]}}"),
            LimitExceeded,
            "products: 2 entries",
        ),
        (
            format!("{{{base},\"vendors\":[\"nvidia\"],\"products\":[\"H200\"]}}"),
            LimitExceeded,
            "products[0]: 4 characters",
        ),
        (format!("{{{base},\"vendors\":[\"nvidia\"],\"title\":\"abcdef\"}}"), LimitExceeded, "title: 6 characters"),
        (
            format!("{{{base},\"vendors\":[\"nvidia\"],\"actor\":\"é\\u0000\"}}"),
            InvalidField,
            "actor: contains the control character U+0000",
        ),
    ];
    for (input, reason, fragment) in cases {
        let r = d.decode(input.as_bytes()).expect_err(&input);
        assert_eq!(r.reason, reason, "{input} → {r}");
        assert!(r.message.contains(fragment), "{input} → {r}");
    }
    let long_id = format!("{{\"id\":\"{}\"}}", "i".repeat(129));
    assert_eq!(decoder().decode(long_id.as_bytes()).unwrap_err().reason, LimitExceeded);
}

#[test]
fn deep_nesting_never_overflows_the_stack() {
    let d = Decoder::new(Arc::new(Catalog::default()), Limits { max_event_bytes: 1 << 20, ..Limits::default() });
    let nest = |n| format!("{}{}", "[".repeat(n), "]".repeat(n));
    // Inside an unknown field, refused at the nesting limit, before any deep descent.
    let unknown = format!(r#"{{"x":{}}}"#, nest(100_000));
    assert_eq!(d.decode(unknown.as_bytes()).unwrap_err().reason, LimitExceeded);
    // Up to the limit it is skipped: only the missing id is left to report.
    let unknown = format!(r#"{{"x":{}}}"#, nest(MAX_NESTING));
    assert_eq!(d.decode(unknown.as_bytes()).unwrap_err().reason, MissingField);
    // Inside a known field it is the wrong type, reported before any deep descent.
    let known = format!(r#"{{"vendors":{}}}"#, nest(100_000));
    let r = d.decode(known.as_bytes()).unwrap_err();
    assert_eq!(r.reason, InvalidField, "{r}");
    assert!(r.message.starts_with("vendors:"), "{r}");
}

#[test]
fn c1_control_characters_are_refused_but_other_non_ascii_text_is_fine() {
    let d = decoder();
    let with_title = |t: &str| {
        format!(
            r#"{{"id":"a","type":"export_ban","occurred_at":"2025-01-01T00:00:00Z","vendors":["nvidia"],"title":"{t}"}}"#
        )
    };
    let r = d.decode(with_title(r"next\u0085line").as_bytes()).unwrap_err();
    assert_eq!(r.reason, InvalidField);
    assert!(r.message.contains("U+0085"), "{r}");
    let r = d.decode(with_title(r"del\u007f").as_bytes()).unwrap_err();
    assert!(r.message.contains("U+007F"), "{r}");
    let text = with_title("© 华为 Ascend — ½");
    let ok = d.decode(text.as_bytes()).unwrap();
    assert_eq!(ok.title.as_deref(), Some("© 华为 Ascend — ½"));
    let long_id = format!(
        r#"{{"id":"{}","type":"export_ban","occurred_at":"2025-01-01T00:00:00Z","vendors":["nvidia"]}}"#,
        "华".repeat(128)
    );
    assert!(d.decode(long_id.as_bytes()).is_ok(), "128 characters is within the limit, whatever the bytes");
}
