"""Generated files (FAQ responses, jieba dictionary) agree with their sources."""

from __future__ import annotations

import csv
import subprocess
import sys

import yaml

from .conftest import REPO


def test_generated_faq_responses_match_the_catalogue() -> None:
    script = REPO / "bot" / "scripts" / "gen_faq_responses.py"
    check = subprocess.run([sys.executable, str(script), "--check"], capture_output=True)
    assert check.returncode == 0, check.stderr.decode()
    faq = yaml.safe_load((REPO / "policies" / "faq.yml").read_text(encoding="utf-8"))["faq"]
    generated = yaml.safe_load(
        (REPO / "bot" / "domain" / "policy_faq.yml").read_text(encoding="utf-8")
    )["responses"]
    assert set(generated) == {f"utter_policy_faq/{code}" for code in faq}
    for code, entry in faq.items():
        assert generated[f"utter_policy_faq/{code}"][0]["text"] == entry["answer"].strip()


def test_jieba_dictionary_is_generated_from_the_ledger() -> None:
    script = REPO / "bot" / "scripts" / "gen_jieba_dict.py"
    check = subprocess.run([sys.executable, str(script), "--check"], capture_output=True)
    assert check.returncode == 0, check.stderr.decode()
    words = {
        line.split()[0]
        for line in (REPO / "bot" / "jieba" / "userdict.txt")
        .read_text(encoding="utf-8")
        .splitlines()
        if line and not line.startswith("#")
    }
    with (REPO / "api/app/ledger/demo_data/projects.csv").open(encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    assert {row["项目名称"] for row in rows} <= words
    assert {"房本", "首次登记", "网签", "契税", "维修基金", "住建局", "证缴分离"} <= words
