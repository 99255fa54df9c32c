//! `chiprisk schema`: the published JSON Schema of events (schema v1).

/// `schema/event-v1.schema.json`, JSON Schema 2020-12.
pub const EVENT_SCHEMA: &str = include_str!("../../schema/event-v1.schema.json");

#[cfg(test)]
mod tests {
    use super::EVENT_SCHEMA;
    use crate::catalog::default_vendors;
    use crate::event::{EventType, Limits, MAX_ID_CHARS};
    use serde_json::Value;

    fn schema() -> Value {
        serde_json::from_str(EVENT_SCHEMA).expect("the schema is JSON")
    }

    fn strings(v: &Value) -> Vec<&str> {
        v.as_array().expect("an array").iter().map(|s| s.as_str().expect("a string")).collect()
    }

    #[test]
    fn the_schema_and_the_vendor_catalog_and_event_types_stay_in_step() {
        let s = schema();
        let vendors: Vec<String> = default_vendors().into_iter().map(|v| v.id).collect();
        assert_eq!(strings(&s["properties"]["vendors"]["items"]["enum"]), vendors);
        let types: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(strings(&s["properties"]["type"]["enum"]), types);
    }

    #[test]
    fn the_schema_states_the_default_limits() {
        let (s, l) = (schema(), Limits::default());
        let p = &s["properties"];
        assert_eq!(p["id"]["maxLength"], MAX_ID_CHARS);
        assert_eq!(p["vendors"]["maxItems"], l.max_vendors);
        assert_eq!(p["products"]["maxItems"], l.max_products);
        assert_eq!(p["products"]["items"]["maxLength"], l.max_product_chars);
        assert_eq!(s["$defs"]["text"]["maxLength"], l.max_text_chars);
        assert!(s["description"].as_str().unwrap().contains(&l.max_event_bytes.to_string()));
        let unknown = format!("more than {} fields", crate::event::MAX_UNKNOWN_FIELDS);
        assert!(s["description"].as_str().unwrap().contains(&unknown));
    }
}
