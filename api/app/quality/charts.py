"""The confusion matrix as a standalone SVG (true intent down, predicted across)."""

from __future__ import annotations

from xml.sax.saxutils import escape

from app.dashboard.charts import FONT
from app.quality.service import Quality

CELL = 30
LABEL_W = 190
TOP = 200
# The rotated column labels reach this far right of their column; the title and the footnote
# need this much width whatever the number of intents.
LABEL_REACH = 90
MIN_WIDTH = 420


def _short(label: str, size: int = 22) -> str:
    return label if len(label) <= size else label[: size - 1] + "…"


def confusion_svg(quality: Quality) -> str:
    """Rows: what the maintainers said it was; columns: what the model predicted; the darker
    the cell, the more messages; the diagonal is what the model got right."""
    labels = quality.labels
    n = len(labels)
    width = max(LABEL_W + max(n, 1) * CELL + LABEL_REACH, MIN_WIDTH)
    height = TOP + max(n, 1) * CELL + 40
    title = "混淆矩阵（行：标注意图，列：模型预测）"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="{FONT}" font-size="11" role="img" '
        f'aria-label="{escape(title)}">',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="8" y="20" font-size="15" font-weight="bold" fill="#222">{escape(title)}</text>',
    ]
    if not labels:
        out.append('<text x="8" y="48" fill="#777">还没有标注过的消息</text></svg>')
        return "".join(out)
    peak = max(quality.confusion.values())
    for j, label in enumerate(labels):
        x = LABEL_W + j * CELL + CELL / 2
        out.append(
            f'<text transform="translate({x:.0f},{TOP - 6}) rotate(-60)" fill="#333">'
            f"<title>{escape(label)}</title>{escape(_short(label))}</text>"
        )
    for i, truth in enumerate(labels):
        y = TOP + i * CELL
        out.append(
            f'<text x="{LABEL_W - 6}" y="{y + CELL / 2 + 4:.0f}" text-anchor="end" fill="#222">'
            f"<title>{escape(truth)}</title>{escape(_short(truth))}</text>"
        )
        for j, predicted in enumerate(labels):
            count = quality.confusion.get((truth, predicted), 0)
            x = LABEL_W + j * CELL
            shade = 0 if not count else 0.15 + 0.85 * count / peak
            color = "58,154,91" if i == j else "192,57,43"
            out.append(
                f'<rect x="{x}" y="{y}" width="{CELL - 1}" height="{CELL - 1}" '
                f'fill="rgba({color},{shade:.2f})" stroke="#eee">'
                f"<title>{escape(truth)} → {escape(predicted)}：{count}</title></rect>"
            )
            if count:
                ink = "#fff" if shade > 0.6 else "#222"
                out.append(
                    f'<text x="{x + CELL / 2:.0f}" y="{y + CELL / 2 + 4:.0f}" '
                    f'text-anchor="middle" fill="{ink}">{count}</text>'
                )
    out.append(
        f'<text x="8" y="{height - 12}" fill="#555">绿色：预测正确；红色：预测错误。共 '
        f"{quality.annotated} 条已标注的真实消息。</text></svg>"
    )
    return "".join(out)
