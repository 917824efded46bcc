"""Generate a large, deterministic, valid ledger (projects + units) for the import benchmark.

    python bench/gen_ledger.py --units 300000 --out /tmp/ledger            # two CSV files
    python bench/gen_ledger.py --units 50000 --out /tmp/ledger --xlsx      # one workbook

Every value is synthetic: names are drawn from common characters and ID numbers are made up
(valid check digit, so the import's validation does its full work).
"""

from __future__ import annotations

import argparse
import csv
import random
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

PROJECT_COLUMNS = [
    "项目编号",
    "项目名称",
    "别名",
    "区县",
    "地址",
    "开发企业",
    "总套数",
    "首次登记",
    "卡点",
    "卡点说明",
    "责任单位",
    "预计化解日期",
]
UNIT_COLUMNS = ["项目编号", "幢号", "单元", "房号", "业主姓名", "身份证号", "转移登记"]
BLOCKERS = [
    "completion_acceptance",
    "fire_acceptance",
    "civil_defense",
    "planning_verification",
    "land_premium_unpaid",
    "developer_tax_unpaid",
    "fees_unpaid",
    "mortgage",
    "court_seizure",
    "developer_uncooperative",
    "permits_missing",
    "area_survey",
    "record_mismatch",
    "resettlement_unconfirmed",
    "construction_payment_dispute",
    "environmental_assessment",
    "soe_housing_reform",
    "property_dispute",
    "buyer_tax_unpaid",
]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国志文辉力海燕鹏飞云"
PLACES = "东西南北金银福瑞祥和康宁泰安华盛兴隆锦绣翠景阳光明月星海山湖林园"
KINDS = ["花园", "小区", "家园", "苑", "山庄", "公寓", "新城", "名邸"]
DISTRICTS = ["城关区", "河东区", "河西区", "新区", "开发区"]
STATUSES = ["已办结", "办理中", "未办理"]
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


def fake_id(rng: random.Random) -> str:
    """A made-up 18-character ID number with a valid birth date and check digit."""
    born = date(1950, 1, 1) + timedelta(days=rng.randrange(0, 365 * 50))
    first17 = f"{rng.randrange(110000, 660000)}{born:%Y%m%d}{rng.randrange(0, 1000):03d}"
    return first17 + _CHECK[sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def projects(n_projects: int, units_per: int, rng: random.Random) -> Iterator[list[str]]:
    """Project rows with 0–3 blockers each."""
    for i in range(n_projects):
        name = "".join(rng.choice(PLACES) for _ in range(2)) + rng.choice(KINDS) + f"{i}期"
        codes = rng.sample(BLOCKERS, rng.choice([0, 1, 1, 2, 3]))
        done = not codes or rng.random() < 0.2
        due = (
            "" if not codes else (date(2027, 1, 1) + timedelta(days=rng.randrange(365))).isoformat()
        )
        yield [
            f"BX{i:05d}",
            name,
            "、".join(["老" + name] if rng.random() < 0.3 else []),
            rng.choice(DISTRICTS),
            f"{rng.choice(PLACES)}{rng.choice(PLACES)}路{rng.randrange(1, 999)}号",
            f"{rng.choice(PLACES)}{rng.choice(PLACES)}置业有限公司",
            str(units_per),
            "已完成" if done else "未完成",
            ";".join(codes),
            ";".join(f"台账说明{j + 1}" for j in range(len(codes))) if codes else "",
            "",
            due,
        ]


def units(n_projects: int, units_per: int, rng: random.Random) -> Iterator[list[str]]:
    """Unit rows: buildings of 6 floors × 2 units × 2 rooms per floor."""
    for i in range(n_projects):
        for k in range(units_per):
            building, rest = divmod(k, 24)
            unit, rest = divmod(rest, 12)
            floor, room = divmod(rest, 2)
            owned = rng.random() < 0.9
            yield [
                f"BX{i:05d}",
                f"{building + 1}号楼",
                f"{unit + 1}单元",
                f"{floor + 1}{room + 1:02d}",
                (rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN)) if owned else "",
                fake_id(rng) if owned else "",
                rng.choice(STATUSES),
            ]


def main() -> None:
    """Write the ledger (CSV pair or one XLSX) and print where."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--units", type=int, default=300_000)
    ap.add_argument("--per-project", type=int, default=300)
    ap.add_argument("--seed", type=int, default=20261123)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--xlsx", action="store_true", help="one workbook with both sheets")
    args = ap.parse_args()
    n_projects = max(1, args.units // args.per_project)
    rng = random.Random(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.xlsx:
        from openpyxl import Workbook

        wb = Workbook(write_only=True)
        for title, header, rows in (
            ("项目", PROJECT_COLUMNS, projects(n_projects, args.per_project, rng)),
            ("房屋", UNIT_COLUMNS, units(n_projects, args.per_project, rng)),
        ):
            ws = wb.create_sheet(title)
            ws.append(header)
            for row in rows:
                ws.append(row)
        path = args.out / "ledger.xlsx"
        wb.save(path)
        print(path)
        return
    for fname, header, rows in (
        ("projects.csv", PROJECT_COLUMNS, projects(n_projects, args.per_project, rng)),
        ("units.csv", UNIT_COLUMNS, units(n_projects, args.per_project, rng)),
    ):
        with (args.out / fname).open("w", newline="", encoding="utf-8-sig") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            writer.writerows(rows)
        print(args.out / fname)


if __name__ == "__main__":
    main()
