"""GET /api/v1/projects and /api/v1/projects/{code}/status over HTTP, on both backends."""

from __future__ import annotations

from datetime import date

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from test_status_service import make_project

from app.policy.catalogue import get_catalogue


def test_status_endpoint(client: TestClient, db: Session) -> None:
    """The status shows open blockers with explanation and department, resolved ones, counts."""
    cat = get_catalogue()
    make_project(
        db,
        "V-001",
        name="十五大街A4区",
        blockers=[
            ("completion_acceptance", "施工单位未移交资料", None, "open"),
            ("civil_defense", "", None, "resolved"),
        ],
        units={"done": 1, "in_progress": 1, "not_started": 2},
        expected=date(2027, 1, 15),
    )
    resp = client.get("/api/v1/projects/V-001/status")
    assert resp.status_code == 200
    body = resp.json()
    assert body["name"] == "十五大街A4区"
    assert body["transfer_registration"]["units_total"] == 4
    assert body["transfer_registration"]["rate"] == 0.25
    (blocker,) = body["open_blockers"]
    assert blocker["code"] == "completion_acceptance"
    assert blocker["explanation"] == cat.blockers["completion_acceptance"].explanation
    assert blocker["department"]["name"] == "住建局"
    assert blocker["note"] == "施工单位未移交资料"
    assert blocker["expected_date"] == "2027-01-15"
    assert [b["code"] for b in body["resolved_blockers"]] == ["civil_defense"]
    assert body["resolved_blockers"][0]["status_label"] == "已解决"


def test_unknown_project_is_a_chinese_404(client: TestClient) -> None:
    """An unknown code answers 404 with `{code, message}` in Chinese."""
    resp = client.get("/api/v1/projects/NOPE-404/status")
    assert resp.status_code == 404
    body = resp.json()
    assert body["code"] == "project_not_found" and "没有找到" in body["message"]


def test_project_search_endpoint(client: TestClient, db: Session) -> None:
    """Search by alias over HTTP; limits are validated with a Chinese message."""
    make_project(db, "V-002", name="天怡景园", aliases=["天怡小区"])
    body = client.get("/api/v1/projects", params={"q": "天怡小区"}).json()
    assert [p["code"] for p in body["items"]] == ["V-002"] and body["total"] == 1
    resp = client.get("/api/v1/projects", params={"limit": 1000})
    assert resp.status_code == 422 and resp.json()["code"] == "invalid_input"
