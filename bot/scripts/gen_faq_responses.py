"""Generate bot/domain/policy_faq.yml (responses utter_policy_faq/<topic>) from policies/faq.yml.

The catalogue is the one source of the answers: the generated responses train the
ResponseSelector and are the answer when the api is down. --check fails on drift.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
FAQ = REPO / "policies" / "faq.yml"
OUT = REPO / "bot" / "domain" / "policy_faq.yml"


class _Dumper(yaml.SafeDumper):
    """Writes multi-line answers as literal blocks, as a maintainer would."""


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str)


def build() -> str:
    """The domain file text for every FAQ topic, in catalogue order."""
    topics = yaml.safe_load(FAQ.read_text(encoding="utf-8"))["faq"]
    responses = {
        f"utter_policy_faq/{code}": [{"text": str(entry["answer"]).strip()}]
        for code, entry in topics.items()
    }
    body = yaml.dump(
        {"version": "3.1", "intents": ["policy_faq"], "responses": responses},
        Dumper=_Dumper,
        allow_unicode=True,
        sort_keys=False,
        width=1000,
    )
    header = (
        "# GENERATED from policies/faq.yml by bot/scripts/gen_faq_responses.py — do not edit.\n"
    )
    return header + body


def main() -> int:
    """Write the domain file (or with --check, report whether it is current)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    text = build()
    if args.check:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if current != text:
            name = Path(__file__).name
            print(f"{OUT} drifted from policies/faq.yml: run {name}", file=sys.stderr)
            return 1
        return 0
    if not OUT.exists() or OUT.read_text(encoding="utf-8") != text:
        OUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
