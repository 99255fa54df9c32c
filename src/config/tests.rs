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

#[test]
fn string_settings_from_the_environment_stay_strings_and_numbers_still_parse() {
    let s = Settings::load_from(
        None,
        env(&[
            ("CHIPRISK__KAFKA__BROKERS", "b:9092"),
            ("CHIPRISK__KAFKA__GROUP_ID", "0123"),
            ("CHIPRISK__KAFKA__PROPERTIES__SASL_USERNAME", "1e3"),
            ("CHIPRISK__KAFKA__PROPERTIES__SASL_PASSWORD", "True"),
            ("CHIPRISK__KAFKA__BATCH_SIZE", "100"),
            ("CHIPRISK__KAFKA__CREATE_TOPICS", "false"),
        ]),
    )
    .unwrap();
    assert_eq!(s.kafka.group_id, "0123");
    assert_eq!(s.kafka.properties["sasl_username"], "1e3");
    assert_eq!(s.kafka.properties["sasl_password"], "True");
    assert_eq!(s.kafka.batch_size, 100);
    assert!(!s.kafka.create_topics);
}

#[test]
fn a_toml_syntax_error_names_file_line_and_column_but_not_the_text() {
    let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    writeln!(f, "[kafka]\nbrokers = \"b:9092\"\nproperties = {{ sasl_password = \"hunter2 }}").unwrap();
    let e = Settings::load_from(Some(f.path()), env(&[])).unwrap_err().to_string();
    assert!(e.contains(&f.path().display().to_string()) && e.contains("line 3"), "{e}");
    assert!(e.contains("column"), "{e}");
    assert!(!e.contains("hunter2"), "the error quotes the secret: {e}");
}

#[test]
fn every_secret_librdkafka_property_is_redacted_however_it_was_set() {
    let secrets = [
        "ssl_key_pem",
        "ssl.key.pem",
        "ssl_key_password",
        "ssl.keystore.password",
        "sasl_oauthbearer_config",
        "sasl.oauthbearer.client.secret",
        "sasl.oauthbearer.assertion.private.key.passphrase",
        "sasl_oauthbearer_assertion_private_key_pem",
        "sasl.jaas.config",
        "SASL_PASSWORD",
        "ssl.key",
    ];
    let mut env_pairs: Vec<(String, String)> = vec![("CHIPRISK__KAFKA__BROKERS".into(), "b:9092".into())];
    for (i, key) in secrets.iter().enumerate() {
        env_pairs.push((
            format!("CHIPRISK__KAFKA__PROPERTIES__{}", key.replace('.', "_").to_uppercase()),
            format!("s3cr3t-{i}"),
        ));
    }
    let s = Settings::load_from(None, env_pairs).unwrap();
    let printed = s.to_toml();
    for (i, key) in secrets.iter().enumerate() {
        assert!(!printed.contains(&format!("s3cr3t-{i}\"")), "{key} printed in clear: {printed}");
    }
    for public in ["security.protocol", "sasl.mechanism", "ssl.key.location", "ssl.ca.location", "compression.type"] {
        assert!(!kafka::is_secret(public), "{public} is not a secret");
    }
}

#[test]
fn durations_are_milliseconds_or_carry_a_unit_in_files_and_variables() {
    use std::time::Duration;
    let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    writeln!(f, "[http]\nidle_timeout_ms = \"2s\"\nwrite_timeout_ms = 7000.4\n[source]\npoll_interval_ms = \"250ms\"")
        .unwrap();
    let s = Settings::load_from(
        Some(f.path()),
        env(&[("CHIPRISK__KAFKA__DRAIN_TIMEOUT_MS", "3000"), ("CHIPRISK__HTTP__HEADER_READ_TIMEOUT_MS", "1m")]),
    )
    .unwrap();
    assert_eq!(s.http.idle_timeout_ms, Duration::from_secs(2));
    assert_eq!(s.http.write_timeout_ms, Duration::from_secs(7));
    assert_eq!(s.source.poll_interval_ms, Duration::from_millis(250));
    assert_eq!(s.kafka.drain_timeout_ms, Duration::from_secs(3));
    assert_eq!(s.http.header_read_timeout_ms, Duration::from_secs(60));
    let e = Settings::load_from(None, env(&[("CHIPRISK__HTTP__IDLE_TIMEOUT_MS", "5 days")])).unwrap_err().to_string();
    assert!(e.contains("idle_timeout_ms") && e.contains("the unit must be"), "{e}");
}
