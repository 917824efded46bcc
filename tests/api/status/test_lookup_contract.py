"""The answer shapes of POST /api/v1/lookup over HTTP: a typed status (the one of
GET /projects/{code}/status), unit_not_found, units_hint, requested; and the OpenAPI schema."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

URL = "/api/v1/lookup"

BLOCKER_FIELDS = {
    "code",
    "name",
    "status",
    "status_label",
    "explanation",
    "note",
    "department",
    "departments",
    "buyer_at_fault",
    "policies",
    "resident_next_steps",
    "time_limit",
    "time_limit_working_days",
    "expected_date",
    "since",
}


def _schema(client: TestClient) -> dict[str, Any]:
    return client.get("/openapi.json").json()


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """The referenced component of a property (through anyOf [ref, null])."""
    for option in node.get("anyOf", [node]):
        ref = option.get("$ref")
        if ref:
            return schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    raise AssertionError(f"no $ref in {node}")


def test_lookup_status_is_the_project_status(demo_client: TestClient) -> None:
    """Both endpoints answer the same status, nulls included."""
    for address in ("观象山庄3号楼2单元501", "观象山庄", "观象山庄9号楼1单元101"):
        body = demo_client.post(URL, json={"address": address}).json()
        code = body["project"]["code"]
        status = demo_client.get(f"/api/v1/projects/{code}/status").json()
        assert body["status"] == status, address
    finished = demo_client.post(URL, json={"address": "锦绣华庭2号楼1单元101"}).json()
    assert finished["status"]["open_blockers"] == []
    assert "expected_resolution_date" in finished["status"]  # null, not dropped


def test_open_blockers_carry_what_the_bot_reads(demo_client: TestClient) -> None:
    body = demo_client.post(URL, json={"address": "观象山庄3号楼2单元501"}).json()
    status = body["status"]
    assert status["initial_registration"] == {"done": False, "label": "未完成"}
    assert set(status["transfer_registration"]) == {
        "units_total",
        "done",
        "in_progress",
        "not_started",
        "rate",
    }
    fire = next(b for b in status["open_blockers"] if b["code"] == "fire_acceptance")
    assert set(fire) == BLOCKER_FIELDS
    assert fire["note"]  # the ledger's 卡点说明
    assert fire["departments"][0] == fire["department"]
    assert {d["name"] for d in fire["departments"]} >= {"住建局"}  # the catalogue's other one
    assert all(set(d) == {"code", "name"} for d in fire["departments"])
    assert all(set(p) == {"code", "name", "summary"} for p in fire["policies"])
    assert fire["buyer_at_fault"] is False and fire["resident_next_steps"]
    assert fire["expected_date"] == "2027-06-30"


def test_openapi_shows_the_typed_status(demo_client: TestClient) -> None:
    schema = _schema(demo_client)
    read = schema["components"]["schemas"]["LookupRead"]
    props = read["properties"]
    status = _resolve(schema, props["status"])
    assert status["title"] == "ProjectStatusRead"
    blocker = _resolve(schema, status["properties"]["open_blockers"]["items"])
    assert set(blocker["properties"]) == BLOCKER_FIELDS
    assert {"unit_not_found", "units_hint", "requested"} <= set(props)
    requested = _resolve(schema, props["requested"])
    assert set(requested["properties"]) == {"building", "unit", "room", "label"}
    project_status = schema["paths"]["/api/v1/projects/{code}/status"]["get"]["responses"]["200"]
    ref = project_status["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("/ProjectStatusRead")


def test_a_missing_unit_over_http(demo_client: TestClient) -> None:
    body = demo_client.post(URL, json={"address": "观象山庄9号楼1单元101"}).json()
    assert body["match"] == "project" and body["project"]["code"] == "QS001"
    assert body["unit_not_found"] is True
    assert body["units_hint"] == "观象山庄有1–5号楼"
    assert "没有查到" in body["message"]
    assert body["requested"] == {
        "building": "9",
        "unit": "1",
        "room": "101",
        "label": "9号楼1单元101室",
    }
    assert "unit" not in body and "candidates" not in body


def test_absent_fields_stay_absent(demo_client: TestClient) -> None:
    found = demo_client.post(URL, json={"address": "观象山庄3号楼2单元501"}).json()
    assert found["unit_not_found"] is False
    assert "units_hint" not in found and "candidates" not in found and "message" not in found
    project = demo_client.post(URL, json={"address": "观象山庄"}).json()
    assert set(project) == {"match", "project", "status", "unit_not_found"}
    none = demo_client.post(URL, json={"address": "幸福花园2号楼1单元301"}).json()
    assert none["match"] == "none" and "没有查到" in none["message"]
    assert set(none) == {"match", "message", "requested"}
    ambiguous = demo_client.post(URL, json={"address": "阳光花2号楼1单元301"}).json()
    assert set(ambiguous) == {"match", "message", "requested", "candidates"}
    assert all(set(c) == {"project", "unit", "score"} for c in ambiguous["candidates"])


def test_id_lookup_has_no_requested_parts(
    demo_client: TestClient, demo_units: list[dict[str, str]]
) -> None:
    row = next(u for u in demo_units if u["项目编号"] == "QS001")
    body = demo_client.post(
        URL, json={"id_number": row["身份证号"], "person_name": row["业主姓名"]}
    ).json()
    assert body["match"] == "unit" and body["unit_not_found"] is False
    assert "requested" not in body
