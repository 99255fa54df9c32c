//! Bytes to [`Event`]: UTF-8 and size checks, a single-pass JSON visitor that
//! rejects duplicate keys and names the field at fault, then validation
//! against the catalog and the limits.

use super::limits::MAX_ID_CHARS;
use super::{Event, EventType, Limits, RejectReason, Rejection, Timestamp, TimestampError, SCHEMA_VERSION};
use crate::catalog::{Catalog, VendorSet};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

/// Decodes and validates events against one catalog and one set of limits.
#[derive(Debug, Clone)]
pub struct Decoder {
    catalog: Arc<Catalog>,
    limits: Limits,
}

impl Decoder {
    pub fn new(catalog: Arc<Catalog>, limits: Limits) -> Self {
        Self { catalog, limits }
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Decodes one message (one JSON object, optionally surrounded by
    /// whitespace).
    pub fn decode<'a>(&self, bytes: &'a [u8]) -> Result<Event<'a>, Rejection> {
        let text = self.checked_text(bytes)?;
        match scan::scan(text) {
            Some(raw) => self.validate(raw),
            None => self.validate(parse_general(text)?),
        }
    }

    /// [`Decoder::decode`] without the fast path: the reference that the
    /// fuzz target and the property tests compare it with.
    #[doc(hidden)]
    pub fn decode_general<'a>(&self, bytes: &'a [u8]) -> Result<Event<'a>, Rejection> {
        self.validate(parse_general(self.checked_text(bytes)?)?)
    }

    /// The message as text, if it is within the size limit and UTF-8.
    fn checked_text<'a>(&self, bytes: &'a [u8]) -> Result<&'a str, Rejection> {
        if bytes.len() > self.limits.max_event_bytes {
            return Err(Rejection::new(
                RejectReason::TooLarge,
                format!("event is {} bytes; the limit is {}", bytes.len(), self.limits.max_event_bytes),
            ));
        }
        std::str::from_utf8(bytes).map_err(|e| {
            Rejection::new(RejectReason::InvalidUtf8, format!("invalid UTF-8 at byte {}", e.valid_up_to()))
        })
    }

    fn validate<'a>(&self, raw: RawEvent<'a>) -> Result<Event<'a>, Rejection> {
        if let Some(v) = raw.schema_version {
            if v != SCHEMA_VERSION {
                return Err(Rejection::new(
                    RejectReason::UnsupportedSchemaVersion,
                    format!("schema_version: {v} is not supported; this build reads version {SCHEMA_VERSION}"),
                ));
            }
        }
        let id = valid_id(raw.id, raw.free_of_controls)?;
        let kind = valid_kind(raw.kind)?;
        let occurred_at = valid_occurred_at(raw.occurred_at)?;
        let vendors = self.valid_vendors(raw.vendors)?;
        let products = self.valid_products(raw.products, raw.free_of_controls)?;
        let severity = raw.severity.map(|s| unit_interval("severity", s, 0.0)).transpose()?;
        let confidence = raw.confidence.map(|c| unit_interval("confidence", c, 0.0)).transpose()?.unwrap_or(1.0);
        let value = valid_value(kind, raw.value)?;
        for (field, text) in [("actor", &raw.actor), ("title", &raw.title), ("source_url", &raw.source_url)] {
            if let Some(t) = text {
                check_text(&field, t, self.limits.max_text_chars, raw.free_of_controls)?;
            }
        }
        if let Some(url) = &raw.source_url {
            check_web_address(url)?;
        }

        Ok(Event {
            id,
            kind,
            occurred_at,
            vendors,
            products,
            severity,
            confidence,
            value,
            actor: raw.actor,
            title: raw.title,
            source_url: raw.source_url,
        })
    }

    fn valid_vendors(&self, vendors: Option<Vec<Cow<'_, str>>>) -> Result<VendorSet, Rejection> {
        let vendor_ids = vendors.ok_or_else(|| missing("vendors"))?;
        if vendor_ids.is_empty() {
            return Err(Rejection::new(RejectReason::InvalidField, "vendors: must name at least one vendor"));
        }
        if vendor_ids.len() > self.limits.max_vendors {
            return Err(Rejection::new(
                RejectReason::LimitExceeded,
                format!("vendors: {} entries; the limit is {}", vendor_ids.len(), self.limits.max_vendors),
            ));
        }
        let mut vendors = VendorSet::default();
        for (i, v) in vendor_ids.iter().enumerate() {
            let id = self.catalog.lookup(v).ok_or_else(|| {
                Rejection::new(
                    RejectReason::UnknownVendor,
                    format!("vendors[{i}]: {:?} is not in the vendor catalog", truncated(v)),
                )
            })?;
            if !vendors.insert(id) {
                return Err(Rejection::new(RejectReason::InvalidField, format!("vendors[{i}]: {v:?} is listed twice")));
            }
        }
        Ok(vendors)
    }

    fn valid_products<'a>(
        &self,
        products: Option<Vec<Cow<'a, str>>>,
        free_of_controls: bool,
    ) -> Result<Vec<Cow<'a, str>>, Rejection> {
        let products = products.unwrap_or_default();
        if products.len() > self.limits.max_products {
            return Err(Rejection::new(
                RejectReason::LimitExceeded,
                format!("products: {} entries; the limit is {}", products.len(), self.limits.max_products),
            ));
        }
        for (i, p) in products.iter().enumerate() {
            let field = Indexed("products", i);
            check_text(&field, p, self.limits.max_product_chars, free_of_controls)?;
            if p.trim().is_empty() {
                return Err(Rejection::new(RejectReason::InvalidField, format!("{field}: must not be blank")));
            }
        }
        Ok(products)
    }
}

/// `source_url` is a web address: `http://` or `https://` and a host. It
/// is shown as a link on the status page and in alert notifications, where
/// `javascript:` or `data:` would run or show what the producer chose.
fn check_web_address(url: &str) -> Result<(), Rejection> {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &url[8..]
    } else if lower.starts_with("http://") {
        &url[7..]
    } else {
        return Err(Rejection::new(
            RejectReason::InvalidField,
            "source_url: must be an http:// or https:// address".to_owned(),
        ));
    };
    if rest.is_empty() || rest.starts_with(['/', '?', '#']) || rest.contains(char::is_whitespace) {
        return Err(Rejection::new(
            RejectReason::InvalidField,
            "source_url: the address has no host, or contains spaces".to_owned(),
        ));
    }
    Ok(())
}

/// Any JSON text through serde_json, with errors that name the field.
fn parse_general(text: &str) -> Result<RawEvent<'_>, Rejection> {
    let mut problem = Problem::None;
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed = RawSeed { problem: &mut problem }.deserialize(&mut de).and_then(|raw| de.end().map(|()| raw));
    parsed.map_err(|e| problem.into_rejection(&e))
}
fn valid_id(id: Option<Cow<'_, str>>, free_of_controls: bool) -> Result<Cow<'_, str>, Rejection> {
    let id = id.ok_or_else(|| missing("id"))?;
    if id.is_empty() {
        return Err(Rejection::new(RejectReason::InvalidField, "id: must not be empty"));
    }
    if id.len() > MAX_ID_CHARS && id.chars().count() > MAX_ID_CHARS {
        return Err(Rejection::new(
            RejectReason::LimitExceeded,
            format!("id: {} characters; the limit is {MAX_ID_CHARS}", id.chars().count()),
        ));
    }
    if !free_of_controls {
        check_no_control(&"id", &id)?;
    }
    Ok(id)
}

fn valid_kind(kind: Option<Cow<'_, str>>) -> Result<EventType, Rejection> {
    let type_name = kind.ok_or_else(|| missing("type"))?;
    EventType::parse(&type_name).ok_or_else(|| {
        Rejection::new(
            RejectReason::UnknownType,
            format!("type: {:?} is not an event type of schema v1", truncated(&type_name)),
        )
    })
}

fn valid_occurred_at(occurred: Option<Cow<'_, str>>) -> Result<Timestamp, Rejection> {
    let occurred = occurred.ok_or_else(|| missing("occurred_at"))?;
    Timestamp::parse_rfc3339(&occurred).map_err(|e| match e {
        TimestampError::Syntax => Rejection::new(
            RejectReason::InvalidField,
            format!("occurred_at: {:?} is not an RFC 3339 timestamp", truncated(&occurred)),
        ),
        TimestampError::OutOfRange => Rejection::new(
            RejectReason::OutOfRange,
            format!("occurred_at: {occurred:?} is outside the supported span 1677-09-21..2262-04-11"),
        ),
    })
}

/// Only market signals carry a value (their direction), and must.
fn valid_value(kind: EventType, value: Option<f64>) -> Result<Option<f64>, Rejection> {
    match (kind, value) {
        (EventType::MarketSignal, None) => Err(missing("value")),
        (EventType::MarketSignal, Some(v)) => Ok(Some(unit_interval("value", v, -1.0)?)),
        (_, None) => Ok(None),
        (_, Some(_)) => Err(Rejection::new(
            RejectReason::InvalidField,
            format!("value: only market_signal events carry a value, not {kind}"),
        )),
    }
}

fn missing(field: &str) -> Rejection {
    Rejection::new(RejectReason::MissingField, format!("{field}: required field is missing"))
}

fn unit_interval(field: &str, v: f64, low: f64) -> Result<f64, Rejection> {
    if (low..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(Rejection::new(RejectReason::OutOfRange, format!("{field}: {v} is outside [{low}, 1]")))
    }
}

/// A field name with an index, such as `products[2]`, formatted only when
/// an error message needs it.
struct Indexed(&'static str, usize);

impl fmt::Display for Indexed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]", self.0, self.1)
    }
}

/// Length and control characters; the latter only when the scanner has not
/// already ruled them out.
fn check_text(field: &dyn fmt::Display, s: &str, max_chars: usize, free_of_controls: bool) -> Result<(), Rejection> {
    // A string no longer in bytes than the limit cannot be longer in characters.
    if s.len() > max_chars {
        let n = s.chars().count();
        if n > max_chars {
            return Err(Rejection::new(
                RejectReason::LimitExceeded,
                format!("{field}: {n} characters; the limit is {max_chars}"),
            ));
        }
    }
    if free_of_controls {
        return Ok(());
    }
    check_no_control(field, s)
}

fn check_no_control(field: &dyn fmt::Display, s: &str) -> Result<(), Rejection> {
    // Control characters are C0 (< 0x20), DEL (0x7F) and C1 (U+0080..U+009F,
    // encoded after a 0xC2 byte); strings without those bytes have none.
    // No early exit, so that the scan vectorises.
    let suspect = s.bytes().fold(false, |acc, b| acc | (b < 0x20) | (b == 0x7F) | (b == 0xC2));
    if !suspect {
        return Ok(());
    }
    match s.chars().find(|c| c.is_control()) {
        Some(c) => Err(Rejection::new(
            RejectReason::InvalidField,
            format!("{field}: contains the control character U+{:04X}", c as u32),
        )),
        None => Ok(()),
    }
}

/// The first 64 characters, for messages that quote untrusted input.
fn truncated(s: &str) -> Cow<'_, str> {
    match s.char_indices().nth(64) {
        Some((i, _)) => Cow::Owned(format!("{}…", &s[..i])),
        None => Cow::Borrowed(s),
    }
}

/// What the visitor knew when parsing failed, so the caller can say which
/// field was at fault.
enum Problem {
    None,
    /// Parsing the value of this field failed.
    InField(&'static str),
    /// A key appeared twice.
    DuplicateKey(String),
    /// An unknown field's value nests deeper than [`MAX_NESTING`] (or is
    /// not JSON).
    TooDeep(String),
    /// More than [`MAX_UNKNOWN_FIELDS`] fields that schema v1 does not name.
    TooManyUnknown,
}

impl Problem {
    fn into_rejection(self, e: &serde_json::Error) -> Rejection {
        use serde_json::error::Category;
        let detail = without_position(e);
        match (self, e.classify()) {
            (Problem::DuplicateKey(k), _) => {
                Rejection::new(RejectReason::MalformedJson, format!("{}: duplicate key", truncated(&k)))
            }
            (Problem::TooManyUnknown, _) => Rejection::new(
                RejectReason::LimitExceeded,
                format!("more than {MAX_UNKNOWN_FIELDS} fields that schema v1 does not name"),
            ),
            (Problem::TooDeep(k), Category::Data) => Rejection::new(
                RejectReason::LimitExceeded,
                format!("{}: nested deeper than {MAX_NESTING} levels", truncated(&k)),
            ),
            (Problem::InField(field), Category::Data) => {
                Rejection::new(RejectReason::InvalidField, format!("{field}: {detail}"))
            }
            (_, Category::Data) => {
                Rejection::new(RejectReason::MalformedJson, format!("event must be a JSON object: {detail}"))
            }
            _ => Rejection::new(
                RejectReason::MalformedJson,
                format!("{detail} at line {} column {}", e.line(), e.column()),
            ),
        }
    }
}

fn without_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    s.strip_suffix(&suffix).map(str::to_owned).unwrap_or(s)
}

/// The fields of schema v1 as they arrive, before validation.
#[derive(Debug, Default, PartialEq)]
struct RawEvent<'a> {
    id: Option<Cow<'a, str>>,
    kind: Option<Cow<'a, str>>,
    occurred_at: Option<Cow<'a, str>>,
    vendors: Option<Vec<Cow<'a, str>>>,
    products: Option<Vec<Cow<'a, str>>>,
    severity: Option<f64>,
    confidence: Option<f64>,
    value: Option<f64>,
    actor: Option<Cow<'a, str>>,
    title: Option<Cow<'a, str>>,
    source_url: Option<Cow<'a, str>>,
    schema_version: Option<u64>,
    /// Set by the fast path, which takes no string with a control character
    /// (C0, DEL or C1), so validation need not look again.
    free_of_controls: bool,
}

const FIELDS: [&str; 12] = [
    "id",
    "type",
    "occurred_at",
    "vendors",
    "products",
    "severity",
    "confidence",
    "value",
    "actor",
    "title",
    "source_url",
    "schema_version",
];

#[test]
fn field_index_matches_the_field_list() {
    for (i, f) in FIELDS.iter().enumerate() {
        assert_eq!(field_index(f), Some(i));
    }
    assert_eq!(field_index("ID"), None);
}

/// The position of a schema field in [`FIELDS`].
fn field_index(key: &str) -> Option<usize> {
    Some(match key {
        "id" => 0,
        "type" => 1,
        "occurred_at" => 2,
        "vendors" => 3,
        "products" => 4,
        "severity" => 5,
        "confidence" => 6,
        "value" => 7,
        "actor" => 8,
        "title" => 9,
        "source_url" => 10,
        "schema_version" => 11,
        _ => return None,
    })
}

struct RawSeed<'p> {
    problem: &'p mut Problem,
}

impl<'de> DeserializeSeed<'de> for RawSeed<'_> {
    type Value = RawEvent<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RawSeed<'_> {
    type Value = RawEvent<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut raw = RawEvent::default();
        let mut seen = 0u16;
        let mut unknown: Option<HashSet<Cow<'de, str>>> = None;
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            let Some(index) = field_index(&key) else {
                let seen_unknown = unknown.get_or_insert_with(HashSet::new);
                if !seen_unknown.insert(key.clone()) {
                    *self.problem = Problem::DuplicateKey(key.into_owned());
                    return Err(de::Error::custom("duplicate key"));
                }
                if seen_unknown.len() > MAX_UNKNOWN_FIELDS {
                    *self.problem = Problem::TooManyUnknown;
                    return Err(de::Error::custom("too many unknown fields"));
                }
                if let Err(e) = map.next_value_seed(Skip { depth: 1 }) {
                    // A syntax error keeps its own category and message.
                    *self.problem = Problem::TooDeep(key.into_owned());
                    return Err(e);
                }
                continue;
            };
            if seen & (1 << index) != 0 {
                *self.problem = Problem::DuplicateKey(key.into_owned());
                return Err(de::Error::custom("duplicate key"));
            }
            seen |= 1 << index;
            *self.problem = Problem::InField(FIELDS[index]);
            match index {
                0 => raw.id = Some(map.next_value::<Text>()?.0),
                1 => raw.kind = Some(map.next_value::<Text>()?.0),
                2 => raw.occurred_at = Some(map.next_value::<Text>()?.0),
                3 => raw.vendors = Some(map.next_value::<Vec<Text>>()?.into_iter().map(|t| t.0).collect()),
                4 => {
                    raw.products = map.next_value::<Option<Vec<Text>>>()?.map(|v| v.into_iter().map(|t| t.0).collect())
                }
                5 => raw.severity = map.next_value()?,
                6 => raw.confidence = map.next_value()?,
                7 => raw.value = map.next_value()?,
                8 => raw.actor = map.next_value::<Option<Text>>()?.map(|t| t.0),
                9 => raw.title = map.next_value::<Option<Text>>()?.map(|t| t.0),
                10 => raw.source_url = map.next_value::<Option<Text>>()?.map(|t| t.0),
                _ => raw.schema_version = map.next_value()?,
            }
            *self.problem = Problem::None;
        }
        Ok(raw)
    }
}

/// Most fields an event may carry that schema v1 does not name (producers'
/// own metadata). Each one costs a lookup; thousands in one message would
/// make it expensive to decode while it says nothing chiprisk reads.
pub const MAX_UNKNOWN_FIELDS: usize = 64;

/// How deep an unknown field's value may nest arrays and objects.
pub const MAX_NESTING: usize = 32;

/// Skips any JSON value, refusing nesting deeper than [`MAX_NESTING`].
struct Skip {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let inner = self.nested::<A::Error>()?;
        while seq.next_element_seed(Skip { depth: inner })?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let inner = self.nested::<A::Error>()?;
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value_seed(Skip { depth: inner })?;
        }
        Ok(())
    }
}

impl Skip {
    fn nested<E: de::Error>(&self) -> Result<usize, E> {
        if self.depth > MAX_NESTING {
            return Err(E::custom(format_args!("nested deeper than {MAX_NESTING} levels")));
        }
        Ok(self.depth + 1)
    }
}

/// A JSON string that borrows from the input when it has no escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> de::Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

mod scan;
#[cfg(test)]
mod tests;
