use super::*;
use std::io::Write;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn defaults_load_with_no_file_and_no_environment() {
    let s = Settings::load_from(None, env(&[])).unwrap();
    assert_eq!(s, Settings::default());
    assert_eq!(s.catalog().unwrap().len(), 11);
}

#[test]
fn a_file_then_the_environment_override_the_defaults() {
    let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    writeln!(f, "[http]\nlisten = \"0.0.0.0:9000\"\n[scoring.export_ban]\nweight = 2.0").unwrap();
    let s = Settings::load_from(
        Some(f.path()),
        env(&[("CHIPRISK__HTTP__LISTEN", "127.0.0.1:9999"), ("CHIPRISK__SCORING__MARKET_SIGNAL__HALF_LIFE_DAYS", "7")]),
    )
    .unwrap();
    assert_eq!(s.http.listen, "127.0.0.1:9999");
    assert_eq!(s.scoring.export_ban.weight, 2.0);
    assert_eq!(s.scoring.export_ban.default_severity, 0.8, "untouched keys keep their defaults");
    assert_eq!(s.scoring.market_signal.half_life_days, 7.0);
}

#[test]
fn unknown_keys_are_refused_with_their_name() {
    let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    writeln!(f, "[http]\nlisten_addr = \"0.0.0.0:9000\"").unwrap();
    let e = Settings::load_from(Some(f.path()), env(&[])).unwrap_err().to_string();
    assert!(e.contains("listen_addr"), "{e}");
    let e = Settings::load_from(None, env(&[("CHIPRISK__SCORING__EXPORT_BAN__WIEGHT", "1")])).unwrap_err().to_string();
    assert!(e.contains("wieght"), "{e}");
}

#[test]
fn invalid_values_are_refused_with_their_key() {
    let e = Settings::load_from(None, env(&[("CHIPRISK__HTTP__LISTEN", "nowhere")])).unwrap_err().to_string();
    assert!(e.contains("http.listen"), "{e}");
    let e = Settings::load_from(None, env(&[("CHIPRISK__SCORING__SCALE", "-1")])).unwrap_err().to_string();
    assert!(e.contains("scoring.scale"), "{e}");
    let e = Settings::load_from(None, env(&[("CHIPRISK__LOG__FORMAT", "xml")])).unwrap_err().to_string();
    assert!(e.contains("xml"), "{e}");
    let e = Settings::load_from(Some(Path::new("/nonexistent.toml")), env(&[])).unwrap_err().to_string();
    assert!(e.contains("does not exist"), "{e}");
}

#[test]
fn the_printed_configuration_loads_back_unchanged() {
    let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    write!(f, "{}", Settings::default().to_toml()).unwrap();
    assert_eq!(Settings::load_from(Some(f.path()), env(&[])).unwrap(), Settings::default());
}

#[test]
fn kafka_is_switched_on_by_brokers_alone_and_secrets_never_print() {
    let s = Settings::load_from(
        None,
        env(&[
            ("CHIPRISK__KAFKA__BROKERS", "127.0.0.1:9092"),
            ("CHIPRISK__KAFKA__PROPERTIES__SASL_PASSWORD", "hunter2"),
        ]),
    )
    .unwrap();
    assert_eq!(s.kafka.brokers.as_deref(), Some("127.0.0.1:9092"));
    assert_eq!(s.kafka.topics, ["chiprisk.events"]);
    assert_eq!(s.kafka.properties["sasl_password"], "hunter2");
    let printed = s.to_toml();
    assert!(!printed.contains("hunter2"), "{printed}");
    assert!(printed.contains("<redacted>"));
}

#[test]
fn kafka_settings_out_of_range_name_their_key() {
    for (key, value, named) in [
        ("CHIPRISK__KAFKA__DRAIN_TIMEOUT_MS", "600000", "kafka.drain_timeout_ms"),
        ("CHIPRISK__KAFKA__PARTITIONS", "0", "kafka.partitions"),
        ("CHIPRISK__KAFKA__BATCH_SIZE", "0", "kafka.batch_size"),
        ("CHIPRISK__KAFKA__PROPERTIES__MESSAGE_MAX_BYTES", "10000", "message.max.bytes"),
    ] {
        let e = Settings::load_from(None, env(&[(key, value)])).unwrap_err().to_string();
        assert!(e.contains(named), "{key}={value}: {e}");
    }
}

#[test]
fn the_largest_record_follows_message_max_bytes() {
    let kafka = ("CHIPRISK__KAFKA__BROKERS", "127.0.0.1:9092");
    assert_eq!(Settings::load_from(None, env(&[kafka])).unwrap().kafka.largest_record(), 1_000_000);
    let raised = ("CHIPRISK__KAFKA__PROPERTIES__MESSAGE_MAX_BYTES", "4000000");
    let s = Settings::load_from(None, env(&[kafka, raised])).unwrap();
    assert_eq!(s.kafka.largest_record(), 4_000_000);
}
