//! The README's tables against the definitions they describe: the metrics
//! table against the metric families (`src/telemetry/families.rs`), every
//! family a row naming exactly its labels and every row a family; and the
//! event fields' `type` row against the event types
//! (`src/event/kind.rs`). Adding a family or a type fails here until the
//! README says it.

use chiprisk::event::EventType;
use chiprisk::telemetry::families::{self, ALL};

/// The README's metrics table: (name, labels) per `chiprisk_` row. Labels
/// are the backticked names outside parentheses (inside are values).
fn readme_rows() -> Vec<(String, Vec<String>)> {
    let readme = include_str!("../README.md");
    let table = readme.split("\n## Metrics\n").nth(1).expect("a Metrics section");
    let mut rows = Vec::new();
    for line in table.lines().skip_while(|l| !l.starts_with('|')).take_while(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let Some(name) = cells[1].strip_prefix("`chiprisk_").and_then(|n| n.strip_suffix('`')) else { continue };
        rows.push((format!("chiprisk_{name}"), labels(cells[2])));
    }
    rows
}

fn labels(cell: &str) -> Vec<String> {
    let mut depth = 0;
    let mut outside = String::new();
    for c in cell.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ if depth == 0 => outside.push(c),
            _ => {}
        }
    }
    let mut out: Vec<String> = outside.split('`').skip(1).step_by(2).map(str::to_owned).collect();
    out.sort();
    out
}

#[test]
fn the_readme_names_every_family_with_its_labels() {
    let rows = readme_rows();
    assert!(rows.len() >= 20, "the table was not found: {rows:?}");
    let mut problems = Vec::new();
    for f in ALL {
        let mut want: Vec<String> = f.labels.iter().map(|l| l.to_string()).collect();
        want.sort();
        match rows.iter().find(|(name, _)| name == f.name) {
            None => problems.push(format!("{} is not in the README's metrics table", f.name)),
            Some((_, got)) if *got != want => {
                problems.push(format!("{}: the README says labels {got:?}, the family has {want:?}", f.name))
            }
            Some(_) => {}
        }
    }
    for (name, _) in &rows {
        if families::find(name).is_none() {
            problems.push(format!("{name} is in the README but chiprisk does not export it"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_label_reader_keeps_names_and_drops_values() {
    assert_eq!(labels("`vendor`, `kind` (`export`, `purchase`)"), ["kind", "vendor"]);
    assert_eq!(labels(""), Vec::<String>::new());
}

#[test]
fn the_readme_lists_every_event_type_in_order() {
    let readme = include_str!("../README.md");
    let row = readme.lines().find(|l| l.starts_with("| `type` | yes |")).expect("the event fields' type row");
    let cell = row.split('|').nth(3).unwrap();
    let listed: Vec<&str> = cell.split('`').skip(1).step_by(2).collect();
    assert_eq!(listed, EventType::ALL.map(EventType::as_str), "README.md's event fields table, row `type`");
}
