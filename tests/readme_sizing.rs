//! The README's sizing quotes BENCHMARKS.md. Each measured figure in the
//! "**Sizing**" bullet is a link, `[246.7 MiB][§4]`, to a heading of
//! BENCHMARKS.md, and must appear verbatim under that heading. Any other
//! number in the bullet must be a setting or a benchmark's input.

const README: &str = include_str!("../README.md");
const BENCHMARKS: &str = include_str!("../BENCHMARKS.md");

/// Numbers the bullet may say without a link: the machine, the benchmark's
/// inputs, the alert's threshold, the chart's defaults, a status code and
/// the name of a percentile.
const NOT_MEASURED: [&str; 9] =
    ["2-vCPU", "1,000,000 events", "1,000 events a second", "85%", "100m", "256 MiB", "512 MiB", "503", "p99"];

/// The bullet, its lines joined by single spaces.
fn sizing_bullet() -> String {
    let start = README.find("- **Sizing**").expect("the README has a sizing bullet");
    let end = README[start..].find("\n\n").map_or(README.len(), |e| start + e);
    one_line(&README[start..end])
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// (figure, label) for every `[figure][label]` in the text.
fn figures(text: &str) -> Vec<(&str, &str)> {
    text.match_indices("][")
        .map(|(i, _)| {
            let figure = &text[text[..i].rfind('[').expect("an opening bracket") + 1..i];
            let label = &text[i + 2..i + 2 + text[i + 2..].find(']').expect("a closing bracket")];
            (figure, label)
        })
        .collect()
}

/// The text under the BENCHMARKS.md heading whose GitHub anchor is `anchor`,
/// up to the next heading, its lines joined by single spaces.
fn section(anchor: &str) -> String {
    let slug = |heading: &str| -> String {
        let words = heading.trim_start_matches('#').trim().to_lowercase();
        words
            .chars()
            .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-')
            .map(|c| if c == ' ' { '-' } else { c })
            .collect()
    };
    let mut parts = BENCHMARKS.split("\n#");
    let part = parts
        .find(|part| slug(part.lines().next().unwrap_or("")) == anchor)
        .unwrap_or_else(|| panic!("no heading #{anchor} in BENCHMARKS.md"));
    one_line(part)
}

#[test]
fn every_sizing_figure_appears_in_the_benchmarks_section_it_links() {
    let bullet = sizing_bullet();
    let quoted = figures(&bullet);
    assert!(quoted.len() >= 6, "the sizing bullet links {} figures: {quoted:?}", quoted.len());
    for (figure, label) in quoted {
        let target = README
            .split(&format!("\n[{label}]: BENCHMARKS.md#"))
            .nth(1)
            .and_then(|rest| rest.lines().next())
            .unwrap_or_else(|| panic!("no link definition [{label}]: BENCHMARKS.md#… in the README"));
        assert!(
            section(target).contains(figure),
            "README sizing says {figure}, not found under BENCHMARKS.md#{target}"
        );
    }
}

#[test]
fn the_sizing_bullet_has_no_unlinked_measurement() {
    let bullet = sizing_bullet();
    let mut rest = bullet.clone();
    for (figure, label) in figures(&bullet) {
        rest = rest.replace(&format!("[{figure}][{label}]"), "");
    }
    for setting in NOT_MEASURED {
        rest = rest.replace(setting, "");
    }
    assert!(
        !rest.contains(|c: char| c.is_ascii_digit()),
        "a number in the README's sizing bullet without a link to BENCHMARKS.md:\n{rest}"
    );
}
