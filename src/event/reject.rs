//! Why an event was refused: a closed set of reasons, each with a message
//! that names the field and the problem.

use serde::{Serialize, Serializer};
use std::fmt;

/// The reason codes. They are metric label values and dead-letter headers,
/// so the set is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// Not valid JSON, not one JSON object, duplicate keys, trailing data.
    MalformedJson,
    /// The bytes are not UTF-8.
    InvalidUtf8,
    /// The message is larger than `limits.max_event_bytes`.
    TooLarge,
    /// A required field is absent.
    MissingField,
    /// A field has the wrong JSON type or an unusable value.
    InvalidField,
    /// `type` is not one of schema v1's types.
    UnknownType,
    /// A vendor id is not in the catalog.
    UnknownVendor,
    /// A number is outside its range, or a time outside the supported span.
    OutOfRange,
    /// A string or array is longer than its limit.
    LimitExceeded,
    /// `schema_version` is not 1.
    UnsupportedSchemaVersion,
}

impl RejectReason {
    pub const ALL: [RejectReason; 10] = [
        RejectReason::MalformedJson,
        RejectReason::InvalidUtf8,
        RejectReason::TooLarge,
        RejectReason::MissingField,
        RejectReason::InvalidField,
        RejectReason::UnknownType,
        RejectReason::UnknownVendor,
        RejectReason::OutOfRange,
        RejectReason::LimitExceeded,
        RejectReason::UnsupportedSchemaVersion,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::MalformedJson => "malformed_json",
            RejectReason::InvalidUtf8 => "invalid_utf8",
            RejectReason::TooLarge => "too_large",
            RejectReason::MissingField => "missing_field",
            RejectReason::InvalidField => "invalid_field",
            RejectReason::UnknownType => "unknown_type",
            RejectReason::UnknownVendor => "unknown_vendor",
            RejectReason::OutOfRange => "out_of_range",
            RejectReason::LimitExceeded => "limit_exceeded",
            RejectReason::UnsupportedSchemaVersion => "unsupported_schema_version",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for RejectReason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A refused event: the reason code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("{reason}: {message}")]
pub struct Rejection {
    pub reason: RejectReason,
    pub message: String,
}

impl Rejection {
    pub fn new(reason: RejectReason, message: impl Into<String>) -> Self {
        Self { reason, message: message.into() }
    }
}
