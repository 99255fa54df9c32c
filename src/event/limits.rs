//! Size limits applied while decoding events.

use serde::{Deserialize, Serialize};

/// Bounds on what one event may hold. They keep memory per event bounded
/// and stop a hostile producer from making one message expensive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest accepted message, in bytes (JSON text of one event).
    pub max_event_bytes: usize,
    /// Most entries in `vendors`.
    pub max_vendors: usize,
    /// Most entries in `products`.
    pub max_products: usize,
    /// Longest product name, in characters.
    pub max_product_chars: usize,
    /// Longest `actor`, `title` or `source_url`, in characters.
    pub max_text_chars: usize,
}

/// Schema v1 fixes the id length: 1 to 128 characters.
pub const MAX_ID_CHARS: usize = 128;

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_event_bytes: 64 * 1024,
            max_vendors: 64,
            max_products: 256,
            max_product_chars: 64,
            max_text_chars: 1024,
        }
    }
}

impl Limits {
    /// Checks that the limits can be met by some event.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("max_event_bytes", self.max_event_bytes),
            ("max_vendors", self.max_vendors),
            ("max_products", self.max_products),
            ("max_product_chars", self.max_product_chars),
            ("max_text_chars", self.max_text_chars),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(format!("limits.{name} must be at least 1"));
            }
        }
        if self.max_event_bytes > 16 * 1024 * 1024 {
            return Err("limits.max_event_bytes must be at most 16777216 (16 MiB)".into());
        }
        Ok(())
    }
}
