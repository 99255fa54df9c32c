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

/// The bad-input matrix, `tests/data/bad-events.json`: each case straight
/// through the decoder, which must give its reason and a message holding
/// its fragment (the field, mostly). `chiprisk replay` (`tests/cli.rs`),
/// the JSON Schema test and the Kafka end-to-end test run the same cases.
#[test]
fn every_bad_input_gets_its_reason_and_a_message_naming_the_problem() {
    let doc: serde_json::Value = serde_json::from_str(include_str!("../../../tests/data/bad-events.json")).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 100, "{}", cases.len());
    let d = decoder();
    for case in cases {
        let text = |k: &str| case[k].as_str().unwrap_or_else(|| panic!("{k} in {case}"));
        let bytes = match case.get("hex").and_then(|h| h.as_str()) {
            Some(hex) => (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect(),
            None => expand(text("json")).into_bytes(),
        };
        let name = text("name");
        let r = d.decode(&bytes).expect_err(name);
        assert_eq!(r.reason.as_str(), text("reason"), "{name} → {r}");
        assert!(
            r.message.contains(text("message_contains")),
            "{name} → {r:?} should mention {:?}",
            text("message_contains")
        );
    }
}

/// A case's text: `<<N*s>>` stands for `s` repeated N times.
fn expand(template: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(at) = rest.find("<<") {
        out.push_str(&rest[..at]);
        let (spec, after) = rest[at + 2..].split_once(">>").expect("a closed <<N*s>>");
        let (n, s) = spec.split_once('*').expect("<<N*s>>");
        out.push_str(&s.repeat(n.parse().expect("a count")));
        rest = after;
    }
    out.push_str(rest);
    out
}

/// A Kafka record with no payload (a line-based source skips empty lines,
/// so the matrix cannot hold this one).
#[test]
fn an_empty_message_is_malformed() {
    let r = decoder().decode(b"").unwrap_err();
    assert_eq!(r.reason, MalformedJson);
    assert!(r.message.contains("EOF"), "{r}");
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
