"""Curation checks for the bundled history (data/history.jsonl).

Run: target/test-venv/bin/python -m pytest tests/history
Another file: HISTORY_FILE=path/to/file.jsonl target/test-venv/bin/python -m pytest tests/history
The rules are in docs/history.md; the lists they use are in curation.yaml.
"""

import datetime as dt
import json
import os
import pathlib
import re
import subprocess
import urllib.parse

import pytest
import yaml

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
HISTORY = pathlib.Path(os.environ.get("HISTORY_FILE", ROOT / "data" / "history.jsonl"))
CURATION = yaml.safe_load((HERE / "curation.yaml").read_text(encoding="utf-8"))
# docs/history.md describes the bundled file; HISTORY_DOC checks another copy of it.
DOC = pathlib.Path(os.environ.get("HISTORY_DOC", ROOT / "docs" / "history.md"))

WINDOW_DAYS = 5
HEDGE = re.compile(r"\b(reportedly|sources?|rumou?rs?|people familiar)\b", re.IGNORECASE)


def load_events():
    events = []
    with open(HISTORY, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                e = json.loads(line)
                e["_line"] = n
                events.append(e)
    return events


EVENTS = load_events()
BY_ID = {e["id"]: e for e in EVENTS}


def when(e):
    return dt.datetime.fromisoformat(e["occurred_at"].replace("Z", "+00:00"))


def products(e):
    """The scopes an event names: product names casefolded, or None for the vendor as a whole."""
    ps = e.get("products") or []
    return [p.casefold() for p in ps] or [None]


def denied(url):
    parts = urllib.parse.urlsplit(url)
    host = (parts.hostname or "").lower()
    where = host + parts.path
    for entry in CURATION["denylist"]:
        d = entry["host"].lower()
        if "/" in d:
            if where.startswith(d) or where.startswith("www." + d):
                return d
        elif host == d or host.endswith("." + d):
            return d
    return None


def label(e):
    return f"{e['id']} (line {e['_line']})"


# --- sources -----------------------------------------------------------------


def test_every_line_has_an_https_source_with_a_host():
    http_ok = {x["id"] for x in CURATION["http_allowed"]}
    bad = []
    for e in EVENTS:
        url = e.get("source_url") or ""
        parts = urllib.parse.urlsplit(url)
        if not parts.hostname:
            bad.append(f"{label(e)}: no host in {url!r}")
        elif parts.scheme == "http" and e["id"] in http_ok:
            continue
        elif parts.scheme != "https":
            bad.append(f"{label(e)}: {parts.scheme}:// (add to http_allowed with a reason, or find an https source)")
    assert not bad, "\n".join(bad)


def test_no_source_on_the_denylist():
    bad = [f"{label(e)}: {denied(e['source_url'])}" for e in EVENTS if denied(e.get("source_url") or "")]
    assert not bad, "denylisted hosts (tests/history/curation.yaml):\n" + "\n".join(bad)


def test_denylist_matches_what_it_should():
    assert denied("https://financialpost.us/2024/11/21/x")
    assert denied("https://d2443.cms.socastsrm.com/2025/04/15/x")
    assert denied("https://reportify.ai/tags/product?tagValue=x")
    assert not denied("https://reportify.ai/news/1186334856787922944")
    assert not denied("https://www.reuters.com/technology/x")


def rung(url):
    host = (urllib.parse.urlsplit(url).hostname or "").lower()
    for name, r in CURATION["ladder"].items():
        if host in {h.lower() for h in r["hosts"]}:
            return name
    return None


def test_every_source_is_on_the_ladder_or_listed_to_replace():
    listed = set(CURATION["to_replace"])
    unplaced = [f"{label(e)}: {urllib.parse.urlsplit(e['source_url']).hostname}" for e in EVENTS
                if rung(e["source_url"]) is None and e["id"] not in listed]
    assert not unplaced, "host on no rung of the ladder; add the host to a rung or the line to to_replace:\n" + "\n".join(unplaced)
    stale = [i for i in listed if i in BY_ID and rung(BY_ID[i]["source_url"]) is not None]
    assert not stale, "listed to_replace but already on the ladder: " + ", ".join(stale)


def test_at_least_half_cite_a_primary_document_or_original_reporting():
    n = sum(rung(e["source_url"]) in ("primary", "original") for e in EVENTS)
    assert 2 * n >= len(EVENTS), f"{n} of {len(EVENTS)} lines cite a primary document or original reporting"


def host(url):
    return (urllib.parse.urlsplit(url).hostname or "").lower()


STATE_MEDIA = {h.lower() for h in CURATION["state_media"]}


def kind(e):
    """The kind of source a line cites, as docs/history.md counts them."""
    r = rung(e["source_url"])
    if r is not None:
        return r
    return "state_media" if host(e["source_url"]) in STATE_MEDIA else "secondary"


def test_state_media_only_for_the_states_own_statements():
    # state media is never original reporting; for a fact that is not the
    # state's own statement it is a secondary source, to replace
    on_ladder = sorted(STATE_MEDIA & {h.lower() for r in CURATION["ladder"].values() for h in r["hosts"]})
    assert not on_ladder, "state media on a rung of the ladder: " + ", ".join(on_ladder)
    listed = set(CURATION["to_replace"])
    bad = [f"{label(e)}: {host(e['source_url'])}, actor {e.get('actor')!r}" for e in EVENTS
           if kind(e) == "state_media" and e["id"] not in listed and not CN_ACTOR.search(e.get("actor") or "")]
    assert not bad, "state media cited for a fact that is not the state's own statement (find a better source or list it in to_replace):\n" + "\n".join(bad)


KIND_ROWS = {
    "primary": "primary documents",
    "original": "original reporting",
    "law_firm": "law-firm client alerts",
    "state_media": "state media",
    "secondary": "secondary",
}


def doc_section(title):
    text = DOC.read_text(encoding="utf-8")
    start = text.index(title)
    end = text.find("\n#", start + len(title))
    return text[start:] if end < 0 else text[start:end]


def test_the_counts_by_kind_in_the_docs_match_the_file():
    if "HISTORY_FILE" in os.environ and "HISTORY_DOC" not in os.environ:
        pytest.skip("docs/history.md describes the bundled history; set HISTORY_DOC to check another file's")
    section = doc_section("### Sources by kind")
    counted = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[1].isdigit():
            for k, start in KIND_ROWS.items():
                if cells[0].startswith(start):
                    counted[k] = int(cells[1])
    actual = {k: 0 for k in KIND_ROWS}
    for e in EVENTS:
        actual[kind(e)] += 1
    assert counted == actual, f"docs/history.md counts {counted}, the file has {actual}"
    assert f"({len(EVENTS)} lines)" in section.splitlines()[0], f"the section title should say ({len(EVENTS)} lines)"


def test_the_docs_list_exactly_the_lines_to_replace():
    if "HISTORY_FILE" in os.environ and "HISTORY_DOC" not in os.environ:
        pytest.skip("docs/history.md describes the bundled history; set HISTORY_DOC to check another file's")
    section = doc_section("### Secondary sources, to replace")
    documented = set(re.findall(r"`(hist-[0-9a-z-]+)`", section))
    listed = set(CURATION["to_replace"])
    assert documented == listed, (f"in docs, not in curation.yaml: {sorted(documented - listed)}; "
                                  f"in curation.yaml, not in docs: {sorted(listed - documented)}")


def test_curation_lists_name_lines_that_exist():
    listed = [x["id"] for x in CURATION["http_allowed"]] + list(CURATION["to_replace"])
    listed += [i for p in CURATION["allowed_pairs"] + CURATION["split_reports"] for i in p["ids"]]
    stale = sorted({i for i in listed if i not in BY_ID})
    assert not stale, "curation.yaml names ids that are not in the history: " + ", ".join(stale)


# --- confidence ----------------------------------------------------------------


def test_hedged_titles_carry_confidence_below_one():
    bad = []
    for e in EVENTS:
        m = HEDGE.search(e.get("title") or "")
        c = e.get("confidence")
        if m and (c is None or c >= 1):
            bad.append(f"{label(e)}: title says {m.group(0)!r} but confidence is {c if c is not None else 'absent (1)'}")
    assert not bad, "\n".join(bad)


# --- dates and ids -------------------------------------------------------------

ID = re.compile(r"^hist-(\d{4}-\d{2}-\d{2})-[a-z0-9]+(-[a-z0-9]+)*$")


def test_ids_carry_the_public_date_and_lines_are_in_date_order():
    bad = []
    for e in EVENTS:
        m = ID.match(e["id"])
        if not m:
            bad.append(f"{label(e)}: id is not hist-YYYY-MM-DD-slug")
        elif m.group(1) != e["occurred_at"][:10]:
            bad.append(f"{label(e)}: id says {m.group(1)}, occurred_at {e['occurred_at'][:10]} (re-dated without a new id?)")
        if not e["occurred_at"].endswith("T00:00:00Z"):
            bad.append(f"{label(e)}: occurred_at {e['occurred_at']} is not 00:00Z on the day of publication")
    keys = [(e["occurred_at"], e["id"]) for e in EVENTS]
    if keys != sorted(keys):
        first = next(i for i in range(len(keys) - 1) if keys[i] > keys[i + 1])
        bad.append(f"lines out of (occurred_at, id) order at line {EVENTS[first + 1]['_line']}")
    assert not bad, "\n".join(bad)


# --- standing restrictions --------------------------------------------------------

STANDING = ("export_ban", "export_ban_lifted", "license_granted", "purchase_ban", "purchase_ban_lifted")


def test_standing_bans_and_licences_are_for_us_vendors_only():
    # A ban never decays. The score is a vendor's China-market risk: a US
    # export ban or a Chinese purchase ban closes part of that market to a US
    # vendor. A US restriction on a Chinese vendor (the Entity List, a
    # foundry rule) is a supply constraint, which decays (docs/history.md,
    # "Standing restrictions"); typed as a ban it would weigh for ever.
    us = set(CURATION["us_vendors"])
    bad = [f"{label(e)}: {e['type']} for {sorted(set(e['vendors']) - us)}" for e in EVENTS
           if e["type"] in STANDING and not set(e["vendors"]) <= us]
    assert not bad, "standing types are for US vendors; a US restriction on a Chinese vendor is a supply_constraint:\n" + "\n".join(bad)


# --- duplicates ----------------------------------------------------------------


def test_no_story_counted_twice_within_five_days():
    allowed = {frozenset(p["ids"]) for p in CURATION["allowed_pairs"]}
    groups = {}
    for e in EVENTS:
        for v in e["vendors"]:
            for p in products(e):
                groups.setdefault((v, e["type"], p), []).append(e)
    bad = []
    for (v, t, p), es in groups.items():
        es.sort(key=when)
        for i, a in enumerate(es):
            for b in es[i + 1:]:
                if when(b) - when(a) > dt.timedelta(days=WINDOW_DAYS):
                    break
                if a["id"] != b["id"] and frozenset((a["id"], b["id"])) not in allowed:
                    bad.append(f"{v} {t} {p or '(vendor)'}: {a['id']} and {b['id']}")
    assert not bad, "same vendor, type and product within 5 days (merge, or add to allowed_pairs with a reason):\n" + "\n".join(bad)


MONEY = re.compile(r"\$\s?\d[\d,.]*\s*(?:billion|million|bn|m)\b", re.IGNORECASE)


def test_no_report_split_into_lines_by_accident():
    split = [set(g["ids"]) for g in CURATION["split_reports"]]
    seen = {}
    for e in EVENTS:
        seen.setdefault((e["source_url"], e["occurred_at"][:10]), []).append(e["id"])
    bad = [f"{ids} share {url} on {day}" for (url, day), ids in seen.items()
           if len(ids) > 1 and not any(set(ids) <= g for g in split)]
    assert not bad, "one report, several lines (merge, or add to split_reports with a reason):\n" + "\n".join(bad)


def test_no_charge_or_figure_counted_twice():
    # the same dollar figure for the same vendor within half a year is one story told twice
    bad = []
    for i, a in enumerate(EVENTS):
        for b in EVENTS[i + 1:]:
            shared = set(MONEY.findall(a.get("title") or "")) & set(MONEY.findall(b.get("title") or ""))
            if shared and set(a["vendors"]) & set(b["vendors"]) and abs(when(a) - when(b)) <= dt.timedelta(days=183):
                bad.append(f"{a['id']} and {b['id']} both report {sorted(shared)}")
    assert not bad, "\n".join(bad)


# --- bans, lifts and licences ---------------------------------------------------------


def bans_before(kind, vendor, product, at):
    return [
        e for e in EVENTS
        if e["type"] == kind and vendor in e["vendors"] and when(e) <= at
        and (product is None or product in products(e))
    ]


def test_every_licence_names_a_product_an_earlier_export_ban_names():
    bad = []
    for e in EVENTS:
        if e["type"] != "license_granted":
            continue
        for v in e["vendors"]:
            for p in products(e):
                if not bans_before("export_ban", v, p, when(e)):
                    bad.append(f"{label(e)}: no earlier export_ban for {v} {p or '(vendor)'}")
    assert not bad, "\n".join(bad)


def test_every_lift_ends_a_ban_of_its_kind():
    kinds = {"export_ban_lifted": "export_ban", "purchase_ban_lifted": "purchase_ban"}
    bad = []
    for e in EVENTS:
        if e["type"] in kinds:
            for v in e["vendors"]:
                for p in products(e):
                    if not bans_before(kinds[e["type"]], v, p, when(e)):
                        bad.append(f"{label(e)}: lifts no earlier {kinds[e['type']]} for {v} {p or '(vendor)'}")
    assert not bad, "\n".join(bad)


def chiprisk_binary():
    for c in (os.environ.get("CHIPRISK_BIN"), ROOT / "target" / "release" / "chiprisk", ROOT / "target" / "debug" / "chiprisk"):
        if c and pathlib.Path(c).is_file() and os.access(c, os.X_OK):
            return str(c)
    return None


LICENCES = [e for e in EVENTS if e["type"] == "license_granted"]


@pytest.mark.parametrize("lic", LICENCES, ids=[e["id"] for e in LICENCES])
def test_replay_shows_each_licence_relieving_a_ban_in_force(lic):
    binary = chiprisk_binary()
    if binary is None:
        if os.environ.get("CHIPRISK_REQUIRE_TOOLS") == "1":
            pytest.fail("no chiprisk binary (set CHIPRISK_BIN or build target/release/chiprisk)")
        pytest.skip("no chiprisk binary (set CHIPRISK_BIN or build target/release/chiprisk)")
    out = subprocess.run(
        [binary, "replay", str(HISTORY), "--at", lic["occurred_at"], "--format", "json", "--explain"],
        check=True, capture_output=True, text=True,
    ).stdout
    vendors = {v["vendor"]: v for v in json.loads(out)["vendors"]}
    bad = []
    for v in lic["vendors"]:
        bans = [b for b in vendors[v]["bans_in_force"] if b["kind"] == "export"]
        for p in products(lic):
            hit = [b for b in bans if (p is None or (b.get("product") or "").casefold() == p) and b["relief"] > 0]
            if not hit:
                bad.append(f"{v} {p or '(vendor)'}: no export ban in force and relieved as of {lic['occurred_at']}")
    assert not bad, f"{lic['id']}:\n" + "\n".join(bad)


# --- what each type means -------------------------------------------------------


US_ACTOR = re.compile(r"\b(US|U\.S\.|BIS|Commerce|White House)\b")
CN_ACTOR = re.compile(r"\b(China|Chinese|CAC|MIIT|SAMR|Beijing)\b|customs|regulators", re.IGNORECASE)

# type -> who may act, for the types whose meaning depends on the actor
ACTORS = {
    "export_ban": US_ACTOR,
    "export_ban_lifted": US_ACTOR,
    "license_granted": US_ACTOR,
    "purchase_ban": CN_ACTOR,
    "purchase_ban_lifted": CN_ACTOR,
}


@pytest.mark.parametrize("kind", sorted(ACTORS))
def test_policy_types_have_the_right_actor(kind):
    bad = [f"{label(e)}: actor {e.get('actor')!r}" for e in EVENTS
           if e["type"] == kind and not ACTORS[kind].search(e.get("actor") or "")]
    assert not bad, f"{kind} must be an act of the {'US' if ACTORS[kind] is US_ACTOR else 'Chinese'} government:\n" + "\n".join(bad)


# A table of examples: how a kind of news is typed (docs/history.md, "Types").
EXAMPLES = [
    ("hist-2022-10-07-bis-advanced-computing-rule", "export_ban", "a US rule that requires a licence"),
    ("hist-2023-10-17-bis-rule-h200-presumption-of-denial", "export_ban", "a product above a rule's thresholds"),
    ("hist-2025-07-15-nvidia-h20-licences-assured", "license_granted", "licences for a banned product"),
    ("hist-2025-11-02-trump-blackwell-not-for-china", "market_signal", "a statement of existing policy"),
    ("hist-2026-06-01-bis-subsidiary-guidance", "market_signal", "guidance restating a rule"),
    ("hist-2025-01-13-ai-diffusion-rule", "market_signal", "a rule that leaves China's access unchanged"),
    ("hist-2024-05-07-intel-huawei-licence-revoked", "market_signal", "losing licences for one customer"),
    ("hist-2025-09-17-cac-bans-rtx-pro-6000d", "purchase_ban", "a Chinese order to stop buying a product"),
    ("hist-2026-01-28-china-approves-h200-imports", "market_signal", "a partial, case-by-case approval"),
    ("hist-2025-08-12-china-urges-avoid-h20", "procurement_pressure", "guidance to avoid a product"),
    ("hist-2024-12-09-samr-nvidia-mellanox-probe", "antitrust_action", "a SAMR investigation"),
    ("hist-2025-04-25-baidu-kunlun-p800-cluster", "domestic_adoption", "a customer running domestic chips"),
    ("hist-2025-08-21-deepseek-v31-domestic-chips", "market_signal", "an intent, not an adoption"),
    ("hist-2025-09-18-huawei-ascend-roadmap", "competitor_roadmap", "a Chinese competitor's product plan"),
    ("hist-2023-09-05-smic-7nm-kirin-9000s", "market_signal", "a phone chip: a capability signal, not a competitor product"),
    ("hist-2019-05-16-huawei-entity-list", "supply_constraint", "a Chinese vendor cut off from US technology"),
]


@pytest.mark.parametrize("event_id,kind,meaning", EXAMPLES, ids=[x[0] for x in EXAMPLES])
def test_examples_are_typed_as_documented(event_id, kind, meaning):
    assert event_id in BY_ID, f"example {event_id} ({meaning}) is missing"
    assert BY_ID[event_id]["type"] == kind, f"{event_id} ({meaning}) should be {kind}"


def test_market_signals_carry_a_value_and_others_do_not():
    bad = [label(e) for e in EVENTS if (e["type"] == "market_signal") != (e.get("value") is not None)]
    assert not bad, "\n".join(bad)


def test_products_are_products():
    scopes = {s["name"].casefold() for s in CURATION["scopes"]}
    bad = []
    for e in EVENTS:
        for p in e.get("products") or []:
            words = p.split()
            lowercase_phrase = len(words) >= 3 and sum(w.islower() for w in words) >= 3
            if p.casefold() not in scopes and (lowercase_phrase or len(p) > 40):
                bad.append(f"{label(e)}: {p!r} reads like a description, not a product")
    assert not bad, "\n".join(bad)


def test_confidence_is_set_where_the_rule_needs_it():
    # every confidence given is a real hedge: in (0, 1)
    bad = [label(e) for e in EVENTS if e.get("confidence") is not None and not 0 < e["confidence"] < 1]
    assert not bad, "confidence, when given, is between 0 and 1 exclusive:\n" + "\n".join(bad)
