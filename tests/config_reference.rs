//! The README's configuration reference against the settings themselves:
//! every key `chiprisk config` prints is documented with its real default,
//! and every documented key exists. The settings types are the one
//! definition; this test keeps the README's table from drifting from them.

use assert_cmd::Command;
use std::collections::BTreeMap;

/// Every key `chiprisk config` prints with its default (no configuration
/// file, no `CHIPRISK__*` variables), flattened to dotted names.
fn printed_defaults() -> BTreeMap<String, String> {
    let mut cmd = Command::cargo_bin("chiprisk").unwrap();
    for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("CHIPRISK")) {
        cmd.env_remove(name);
    }
    let out = cmd.arg("config").assert().success().get_output().stdout.clone();
    let table: toml::Table = toml::from_str(&String::from_utf8(out).unwrap()).unwrap();
    let mut keys = BTreeMap::new();
    flatten("", &toml::Value::Table(table), &mut keys);
    keys
}

fn flatten(prefix: &str, value: &toml::Value, out: &mut BTreeMap<String, String>) {
    match value {
        toml::Value::Table(t) if !t.is_empty() => {
            for (k, v) in t {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&key, v, out);
            }
        }
        v => {
            out.insert(prefix.to_owned(), shown(v));
        }
    }
}

/// A value as the README writes it.
fn shown(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Float(f) if f.fract() == 0.0 => format!("{f:.1}"),
        toml::Value::Array(items) if items.iter().all(|i| i.is_str()) => {
            let quoted: Vec<String> = items.iter().map(|i| format!("{:?}", i.as_str().unwrap())).collect();
            format!("[{}]", quoted.join(", "))
        }
        toml::Value::Array(_) => "[...]".to_owned(),
        toml::Value::Table(_) => "{}".to_owned(),
        other => other.to_string(),
    }
}

/// Each documented key with its documented default (`None`: the README
/// points elsewhere for it), from the table under "## Configuration".
fn documented() -> BTreeMap<String, Option<String>> {
    let readme = include_str!("../README.md");
    let section = readme.split("\n## Configuration\n").nth(1).unwrap().split("\n## ").next().unwrap();
    let mut keys = BTreeMap::new();
    for row in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.trim_matches('|').split(" | ").map(str::trim).collect();
        let (key, default, meaning) = (cells[0].trim_matches('`'), cells[1].replace('`', ""), cells[2]);
        // `scoring.<decaying type>.{...}`: the types are named in the meaning.
        let stems: Vec<String> = match key.split_once("<decaying type>") {
            Some((head, tail)) => meaning.split('`').skip(1).step_by(2).map(|t| format!("{head}{t}{tail}")).collect(),
            None => vec![key.to_owned()],
        };
        for stem in stems {
            match stem.split_once(".{") {
                Some((head, fields)) => {
                    let fields: Vec<&str> = fields.trim_end_matches('}').split(',').collect();
                    let defaults: Vec<&str> = default.split(", ").collect();
                    for (i, f) in fields.iter().enumerate() {
                        let d = (defaults.len() == fields.len()).then(|| defaults[i].to_owned());
                        keys.insert(format!("{head}.{f}"), d);
                    }
                }
                None => {
                    keys.insert(stem, Some(default.clone()));
                }
            }
        }
    }
    keys
}

#[test]
fn every_setting_is_documented_in_the_readme_with_its_default() {
    let printed = printed_defaults();
    let documented = documented();
    assert!(printed.len() > 40, "{printed:?}");
    let mut problems = Vec::new();
    for (key, value) in &printed {
        match documented.get(key) {
            None => problems.push(format!("{key} (default {value}) is not in the README's configuration table")),
            Some(Some(d)) if d != value && key != "vendors" => {
                problems.push(format!("{key}: the README says {d}, the default is {value}"))
            }
            _ => {}
        }
    }
    for (key, default) in &documented {
        if !printed.contains_key(key) && default.as_deref() != Some("unset") {
            problems.push(format!("{key} is documented but is no setting (or not an unset one)"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
