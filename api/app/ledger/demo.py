"""The demo ledger of the fictional 青松县: ~30 projects, ~3,000 units, every blocker code.

`python -m app.ledger.demo [OUT_DIR]` regenerates `demo_data/projects.csv` and `units.csv`
byte-identically (fixed seed, no clock): the shipped files are what `make run` loads.
Names, ID numbers and addresses are invented; the ID region codes (99xxxx) belong to no
real place, so no generated ID number can be a real resident's.
"""

from __future__ import annotations

import csv
import random
import sys
from dataclasses import dataclass
from pathlib import Path

from app.status.idcard import check_digit

DEMO_DIR = Path(__file__).resolve().parent / "demo_data"
PROJECTS_FILE = "projects.csv"
UNITS_FILE = "units.csv"
SEED = 20261123
COUNTY = "青松县"

PROJECT_HEADERS = [
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
UNIT_HEADERS = ["项目编号", "幢号", "单元", "房号", "业主姓名", "身份证号", "转移登记"]

# Fictional region codes per town/street (99 is no province).
REGIONS = {"城关镇": "990101", "河西街道": "990102", "东城街道": "990103", "松山镇": "990104"}
REGIONS["滨河新区"] = "990105"


@dataclass(frozen=True)
class Layout:
    """Buildings × units × floors × rooms per floor; room numbers are floor*100 + n."""

    buildings: tuple[str, ...]
    units: tuple[str, ...]
    floors: int
    per_floor: int


@dataclass(frozen=True)
class DemoProject:
    """One project row of the demo ledger and the shape of its units."""

    code: str
    name: str
    aliases: tuple[str, ...]
    district: str
    street: str
    developer: str
    done: bool
    layout: Layout
    blockers: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    departments: tuple[str, ...] = ()
    expected: str = ""


def _b(n: int) -> tuple[str, ...]:
    return tuple(str(i) for i in range(1, n + 1))


U1, U2, U3, NO_UNIT = ("1",), ("1", "2"), ("1", "2", "3"), ("",)

# A data table: kept one project per block rather than one argument per line.
# fmt: off
PROJECTS: tuple[DemoProject, ...] = (
    DemoProject(
        "QS001", "观象山庄", ("观象小区", "观象新村"), "城关镇", "观象路18号",
        "青松观象置业有限公司", False, Layout(_b(5), U3, 6, 2),
        ("fire_acceptance", "civil_defense"),
        ("3号楼消防设施整改后尚未复验", "人防工程易地建设费未缴清"),
        ("消防救援大队", "人防办"), "2027-06-30",
    ),
    DemoProject(
        "QS002", "阳光花园", ("阳光小区",), "城关镇", "迎宾大道66号",
        "青松阳光房地产开发有限公司", False, Layout(_b(4), U2, 6, 2),
        ("land_premium_unpaid",), ("开发企业欠缴土地出让金及滞纳金",), (), "2027-03-31",
    ),
    DemoProject(
        "QS003", "阳光花苑", (), "河西街道", "滨河西路9号", "青松恒达置业有限公司", True,
        Layout(_b(4), U2, 5, 2),
    ),
    DemoProject(
        "QS004", "滨河湾一期", ("滨河湾花园一期",), "河西街道", "滨河路100号",
        "青松滨河置业有限公司", True, Layout(_b(6), U2, 6, 2),
    ),
    DemoProject(
        "QS005", "滨河湾二期", ("滨河湾花园二期",), "河西街道", "滨河路102号",
        "青松滨河置业有限公司", False, Layout(_b(4), U2, 11, 2),
        ("completion_acceptance", "construction_payment_dispute"),
        ("竣工验收备案尚未办理", "拖欠施工单位工程款，施工单位不配合竣工验收"),
        ("住建局",), "2027-09-30",
    ),
    DemoProject(
        "QS006", "锦绣华庭", (), "东城街道", "东关街28号", "青松锦绣地产有限公司", True,
        Layout(_b(3), U2, 6, 2),
    ),
    DemoProject(
        "QS007", "金都大厦", ("金都商住楼",), "城关镇", "解放路1号",
        "青松金都实业有限公司", False, Layout(("A座", "B座"), NO_UNIT, 18, 4),
        ("mortgage", "court_seizure"),
        ("在建工程抵押给银行，尚未解押", "开发企业涉诉，项目被法院查封"),
        ("不动产登记中心", "法院"), "",
    ),
    DemoProject(
        "QS008", "翠湖苑", ("水泥厂家属院", "水泥厂宿舍"), "松山镇", "松山路5号",
        "原青松县水泥厂", False, Layout(_b(6), U1, 5, 2),
        ("soe_housing_reform",), ("原水泥厂自有划拨土地上的房改房，需补办土地手续",),
        ("国资委",), "2027-05-31",
    ),
    DemoProject(
        "QS009", "幸福里小区", ("东关回迁楼",), "东城街道", "幸福路20号",
        "青松城市建设投资有限公司", False, Layout(_b(7), U2, 6, 2),
        ("resettlement_unconfirmed",), ("回迁安置协议与实际分配房号未核对确认",),
        ("征收办",), "2027-02-28",
    ),
    DemoProject(
        "QS010", "建安小区", ("建安新村",), "城关镇", "建安街3号", "青松建安房地产开发公司",
        False, Layout(_b(12), U1, 5, 2),
        ("developer_uncooperative", "permits_missing"),
        ("开发企业已注销，法定代表人联系不上", "缺少建设工程规划许可证"),
        ("住建局;自然资源局",), "2027-12-31",
    ),
    DemoProject(
        "QS011", "紫荆苑", (), "河西街道", "紫荆路16号", "青松紫荆置业有限公司", False,
        Layout(_b(5), U2, 6, 2),
        ("planning_verification",), ("5号楼超出规划许可加建一层，规划核实未通过",),
        ("自然资源局",), "2027-04-30",
    ),
    DemoProject(
        "QS012", "书香门第", (), "东城街道", "文昌路8号", "青松文昌房地产有限公司", True,
        Layout(_b(4), U2, 6, 2),
    ),
    DemoProject(
        "QS013", "御景湾", (), "滨河新区", "新区大道199号", "青松御景置业有限公司", True,
        Layout(_b(4), U2, 11, 2),
        ("developer_tax_unpaid", "fees_unpaid"),
        ("开发企业欠缴税款，暂未开具销售不动产发票", "城市基础设施配套费未缴清"),
        ("税务局;住建局",), "2027-01-31",
    ),
    DemoProject(
        "QS014", "盛世名门", (), "滨河新区", "新区大道88号", "青松盛世地产有限公司", False,
        Layout(_b(3), U2, 6, 2),
        ("area_survey",), ("未做房屋面积实测，楼盘表尚未建立",), ("房产局",), "2026-12-31",
    ),
    DemoProject(
        "QS015", "康居新村", (), "松山镇", "康居路2号", "青松安居工程有限公司", False,
        Layout(_b(6), U2, 5, 2),
        ("record_mismatch",), ("房屋坐落与土地证记载不一致",), ("不动产登记中心",), "2027-03-15",
    ),
    DemoProject(
        "QS016", "东方花园", ("东方家园",), "城关镇", "人民路128号", "青松东方置业有限公司",
        False, Layout(_b(3), U2, 6, 2),
        ("environmental_assessment",), ("项目未办理环境影响评价手续",), ("生态环境局",),
        "2027-08-31",
    ),
    DemoProject(
        "QS017", "银杏家园", (), "河西街道", "银杏路6号", "青松银杏房地产有限公司", True,
        Layout(_b(2), U2, 6, 2),
    ),
    DemoProject(
        "QS018", "龙泉雅居", (), "松山镇", "龙泉街11号", "青松龙泉置业有限公司", True,
        Layout(_b(4), U2, 6, 2),
        ("property_dispute", "buyer_tax_unpaid"),
        ("部分房屋一房多卖，正在诉讼", "部分购房人契税、维修基金尚未缴纳"),
        ("法院;税务局",), "",
    ),
    DemoProject(
        "QS019", "青松壹号", ("青松一号院",), "城关镇", "青松大道1号", "青松壹号置业有限公司",
        True, Layout(_b(3), U1, 18, 2),
    ),
    DemoProject(
        "QS020", "凤凰城三期", ("凤凰新城三期",), "滨河新区", "凤凰路300号",
        "青松凤凰地产有限公司", False, Layout(_b(4), U2, 6, 2),
        ("fire_acceptance",), ("消防验收未通过，需整改消防通道",), ("住建局",), "2027-02-15",
    ),
    DemoProject(
        "QS021", "桂花园", (), "东城街道", "桂花巷7号", "青松桂园房地产有限公司", True,
        Layout(_b(3), U2, 5, 2),
    ),
    DemoProject(
        "QS022", "水岸名居", (), "河西街道", "滨河西路58号", "青松水岸置业有限公司", False,
        Layout(_b(3), U2, 6, 2),
        ("mortgage",), ("土地使用权抵押给银行，正在协调解押",), (), "2027-01-15",
    ),
    DemoProject(
        "QS023", "南山府", (), "松山镇", "南山路99号", "青松南山地产有限公司", False,
        Layout(_b(2), U2, 6, 2),
        ("court_seizure", "developer_uncooperative"),
        ("项目土地被法院查封", "开发企业不配合办理首次登记"), (), "",
    ),
    DemoProject(
        "QS024", "世纪华府", ("世纪花园",), "城关镇", "世纪大道20号", "青松世纪置业有限公司",
        False, Layout(_b(4), U2, 6, 2),
        ("land_premium_unpaid", "planning_verification"),
        ("土地出让金未缴清", "改变车库用途，规划核实未通过"), ("自然资源局",), "2027-10-31",
    ),
    DemoProject(
        "QS025", "富春嘉园", (), "滨河新区", "富春路15号", "青松富春房地产有限公司", True,
        Layout(_b(4), U2, 6, 2),
    ),
    DemoProject(
        "QS026", "泰和苑", (), "东城街道", "泰和路9号", "青松泰和置业有限公司", False,
        Layout(_b(3), U1, 6, 2),
        ("completion_acceptance", "fire_acceptance", "civil_defense"),
        ("竣工验收资料不全", "消防验收未申报", "人防工程未验收"),
        ("住建局;消防救援大队;人防办",), "2027-07-31",
    ),
    DemoProject(
        "QS027", "润泽园", (), "松山镇", "润泽路3号", "青松润泽置业有限公司", True,
        Layout(_b(3), U2, 5, 2),
    ),
    DemoProject(
        "QS028", "鑫源商住楼", (), "城关镇", "商业街45号", "青松鑫源实业有限公司", False,
        Layout(("1",), NO_UNIT, 7, 4),
        ("area_survey", "record_mismatch"),
        ("未做面积实测", "房屋与土地登记信息不一致"), ("房产局;不动产登记中心",), "",
    ),
    DemoProject(
        "QS029", "和平里小区", ("粮食局家属院",), "东城街道", "和平路12号", "原青松县粮食局",
        False, Layout(_b(4), U1, 5, 2),
        ("soe_housing_reform",), ("原粮食局自有土地上的职工住房",), (), "2027-06-15",
    ),
    DemoProject(
        "QS030", "锦华苑", (), "城关镇", "锦华路21号", "青松锦华房地产有限公司", True,
        Layout(_b(3), U2, 6, 2),
    ),
)
# fmt: on

_SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
_GIVEN = (
    "建国秀英桂兰志强丽华海燕文军玉梅春生红霞明德淑珍永刚晓东卫东金凤国庆新民宝山慧敏子涵雨欣浩然"
)


def _blocker_cells(p: DemoProject) -> tuple[str, str, str]:
    dept = ";".join(p.departments)
    return ";".join(p.blockers), ";".join(p.notes), dept


def project_rows() -> list[list[str]]:
    """The Projects sheet rows (without the header)."""
    rows = []
    for p in PROJECTS:
        lay = p.layout
        total = len(lay.buildings) * len(lay.units) * lay.floors * lay.per_floor
        blockers, notes, depts = _blocker_cells(p)
        rows.append(
            [
                p.code,
                p.name,
                "、".join(p.aliases),
                p.district,
                f"{COUNTY}{p.district}{p.street}",
                p.developer,
                str(total),
                "已完成" if p.done else "未完成",
                blockers,
                notes,
                depts,
                p.expected,
            ]
        )
    return rows


def _person(rng: random.Random, region: str, used: set[str]) -> tuple[str, str]:
    surname = rng.choice(_SURNAMES)
    given = "".join(rng.choice(_GIVEN) for _ in range(rng.choice((1, 2, 2))))
    while True:
        year = rng.randint(1948, 2000)
        month, day = rng.randint(1, 12), rng.randint(1, 28)
        first17 = f"{region}{year:04d}{month:02d}{day:02d}{rng.randint(0, 999):03d}"
        id_number = first17 + check_digit(first17)
        if id_number not in used:
            used.add(id_number)
            return surname + given, id_number


def _transfer(rng: random.Random, p: DemoProject) -> str:
    if not p.done:
        return "未办理"  # no transfer before the project's 首次登记
    roll = rng.random()
    if not p.blockers:
        return "已办结" if roll < 0.9 else ("办理中" if roll < 0.95 else "未办理")
    return "已办结" if roll < 0.4 else ("办理中" if roll < 0.6 else "未办理")


def unit_rows() -> list[list[str]]:
    """The Units sheet rows (without the header), deterministic for SEED."""
    rng = random.Random(SEED)
    used: set[str] = set()
    rows = []
    for p in PROJECTS:
        lay = p.layout
        for building in lay.buildings:
            for unit in lay.units:
                for floor in range(1, lay.floors + 1):
                    for n in range(1, lay.per_floor + 1):
                        name, id_number = _person(rng, REGIONS[p.district], used)
                        status = _transfer(rng, p)
                        room = str(floor * 100 + n)
                        rows.append([p.code, building, unit, room, name, id_number, status])
    return rows


def _write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    # UTF-8 with BOM and CRLF-free lines: opens in Excel and diffs cleanly in git.
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def write_demo(out_dir: Path = DEMO_DIR) -> list[Path]:
    """Write projects.csv and units.csv into out_dir; returns both paths (projects first)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    projects, units = out_dir / PROJECTS_FILE, out_dir / UNITS_FILE
    _write(projects, PROJECT_HEADERS, project_rows())
    _write(units, UNIT_HEADERS, unit_rows())
    return [projects, units]


def demo_paths() -> list[Path]:
    """The shipped demo ledger files, projects first (the order an importer needs)."""
    return [DEMO_DIR / PROJECTS_FILE, DEMO_DIR / UNITS_FILE]


if __name__ == "__main__":
    for written in write_demo(Path(sys.argv[1]) if len(sys.argv) > 1 else DEMO_DIR):
        print(written)
