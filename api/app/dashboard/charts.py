"""Bar charts as standalone SVG, rendered on the server (paste into a report, no JS needed)."""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape

from app.dashboard.service import Dashboard

FONT = "'Noto Sans CJK SC','Source Han Sans SC','Microsoft YaHei','PingFang SC',sans-serif"
COLORS = ("#2f6fb3", "#e08a1e", "#3a9a5b", "#c0392b")


def hbar_chart(
    title: str,
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    max_value: float | None = None,
    unit: str = "",
    width: int = 640,
) -> str:
    """Horizontal grouped bars: one group per category, one bar per series, values labelled."""
    label_w, right_pad, bar_h, gap = 150, 60, 14, 10
    top = 48 if len(series) > 1 else 34
    group_h = bar_h * len(series) + gap
    height = top + max(len(categories), 1) * group_h + 16
    values = [v for _, vals in series for v in vals if v is not None]
    scale_max = max_value or (max(values) if values else 1) or 1
    plot_w = width - label_w - right_pad
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="{FONT}" font-size="12" role="img" '
        f'aria-label="{escape(title)}">',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="8" y="20" font-size="15" font-weight="bold" fill="#222">{escape(title)}</text>',
    ]
    if len(series) > 1:
        x = 8
        for i, (name, _) in enumerate(series):
            color = COLORS[i % len(COLORS)]
            out.append(f'<rect x="{x}" y="30" width="10" height="10" fill="{color}"/>')
            out.append(f'<text x="{x + 14}" y="39" fill="#333">{escape(name)}</text>')
            x += 24 + 13 * len(name)
    if not categories:
        out.append(f'<text x="8" y="{top + 14}" fill="#777">暂无数据</text>')
    for row, category in enumerate(categories):
        y0 = top + row * group_h
        short = category if len(category) <= 11 else category[:10] + "…"
        mid = y0 + (bar_h * len(series)) / 2 + 4
        out.append(
            f'<text x="{label_w - 6}" y="{mid:.0f}" text-anchor="end" fill="#222">'
            f"<title>{escape(category)}</title>{escape(short)}</text>"
        )
        for i, (_, vals) in enumerate(series):
            value = vals[row] if row < len(vals) else None
            y = y0 + i * bar_h
            w = 0.0 if value is None else max(0.0, min(1.0, value / scale_max)) * plot_w
            color = COLORS[i % len(COLORS)]
            out.append(
                f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h - 2}" fill="{color}"/>'
            )
            text = "—" if value is None else f"{value:g}{unit}"
            out.append(
                f'<text x="{label_w + w + 4:.1f}" y="{y + bar_h - 4}" fill="#333">{text}</text>'
            )
    out.append(
        f'<line x1="{label_w}" y1="{top - 4}" x2="{label_w}" y2="{height - 12}" stroke="#999"/>'
    )
    out.append("</svg>")
    return "".join(out)


CHARTS = {
    "districts": "各区县登记化解率",
    "petitions": "信访办理情况",
    "blockers": "卡点类型分布（涉及项目数）",
    "departments": "各部门交办与超期",
}


def render(name: str, d: Dashboard) -> str:
    """One named dashboard chart as SVG text; KeyError for an unknown name."""
    title = CHARTS[name]
    if name == "districts":
        rows = d.districts
        return hbar_chart(
            title,
            [r.label for r in rows],
            [
                ("首次登记化解率", [r.initial_rate for r in rows]),
                ("转移登记化解率", [r.transfer_rate for r in rows]),
                ("总体登记率", [r.overall_rate for r in rows]),
            ],
            max_value=100,
            unit="%",
        )
    if name == "petitions":
        p = d.petitions
        return hbar_chart(
            title,
            ["办结率", "按期办结率", "息诉罢访率"],
            [("比率", [p.closure_rate, p.on_time_rate, p.satisfaction_rate])],
            max_value=100,
            unit="%",
        )
    if name == "blockers":
        rows_b = d.by_blocker[:15]
        return hbar_chart(
            title,
            [r["name"] for r in rows_b],
            [("项目数", [float(r["projects"]) for r in rows_b])],
        )
    rows_d = d.by_department[:15]
    return hbar_chart(
        title,
        [r["name"] for r in rows_d],
        [
            ("交办件数", [float(r["assigned"]) for r in rows_d]),
            ("超期未答复", [float(r["overdue"]) for r in rows_d]),
        ],
    )
