"""The docs are self-contained: every rule, reward mode and Table-1 row is described in
docs/rules.md, and every link into it from the code and the README lands on a real section."""

from __future__ import annotations

import re
from pathlib import Path

from rltuner.metrics import TABLE1_ROWS
from rltuner.rewards import REWARD_MODES, RULE_NAMES

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "docs" / "rules.md"


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    out = set()
    for title in re.findall(r"^#+ (.+)$", markdown, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")
        out.add(slug)
    return out


def _sources() -> list[Path]:
    files = [ROOT / "README.md", *ROOT.glob("docs/*.md")]
    for folder in ("src", "tests", "scripts", "benchmarks", "examples"):
        files += [p for p in (ROOT / folder).rglob("*.py")]
    return files


def test_every_rule_mode_and_statistic_is_described():
    text = RULES.read_text()
    for name in RULE_NAMES:
        assert f"[`{name}`]" in text, f"rule {name} has no entry in docs/rules.md"
    table = text[text.index("## Reward modes") : text.index("## Algorithms")]
    for mode in REWARD_MODES:
        assert f"| `{mode}`" in table, f"reward mode {mode} missing from docs/rules.md"
    stats = text[text.index("## Table-1 statistics") :]
    for row in TABLE1_ROWS:
        assert row.split(",")[0] in stats, f"Table-1 row {row!r} missing from docs/rules.md"


def test_links_into_the_docs_land_on_sections():
    anchors = {
        "docs/rules.md": _anchors(RULES.read_text()),
        "README.md": _anchors((ROOT / "README.md").read_text()),
    }
    seen = 0
    for path in _sources():
        text = path.read_text()
        assert "SPEC " + "§" not in text, f"{path}: cites the outside SPEC; link docs/rules.md"
        for doc, anchor in re.findall(r"((?:docs/)?rules\.md|README\.md)#([\w\-]+)", text):
            doc = "docs/rules.md" if doc.endswith("rules.md") else doc
            assert anchor in anchors[doc], f"{path}: {doc}#{anchor} is no section of {doc}"
            seen += 1
    assert seen >= 10  # the code does link the docs
