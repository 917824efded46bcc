"""GET /api/v1/policies and /api/v1/policies/{code}: the catalogue as the bot receives it."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.policy.catalogue import BLOCKER_CODES, FAQ_CODES, get_catalogue


def test_policies_lists_the_whole_catalogue(client: TestClient) -> None:
    """Every blocker and FAQ topic, the departments, policies, guidance and time limits."""
    cat = get_catalogue()
    body = client.get("/api/v1/policies").json()
    assert [b["code"] for b in body["blockers"]] == list(cat.blockers)
    assert set(b["code"] for b in body["blockers"]) == set(BLOCKER_CODES)
    assert set(t["code"] for t in body["faq"]) == set(FAQ_CODES)
    assert {d["code"] for d in body["departments"]} == set(cat.departments)
    assert {p["code"] for p in body["policies"]} == set(cat.policies)
    assert body["settings"]["first_answer_working_days"] == cat.settings.first_answer_working_days
    assert body["guidance"]["materials"]["transfer_registration"]["items"] == list(
        cat.guidance.materials["transfer_registration"].items
    )


def test_one_blocker_by_code(client: TestClient) -> None:
    """A blocker comes with its departments and policies spelled out."""
    cat = get_catalogue()
    body = client.get("/api/v1/policies/developer_uncooperative").json()
    entry = cat.blockers["developer_uncooperative"]
    assert body["kind"] == "blocker" and body["name"] == entry.name
    assert body["explanation"] == entry.explanation
    assert [d["code"] for d in body["departments"]] == list(entry.departments)
    assert body["departments"][0]["name"] == cat.departments[entry.departments[0]].name
    assert {p["code"] for p in body["policies"]} == set(entry.policies)
    assert all(p["summary"] for p in body["policies"])
    assert body["staff_next_steps"] == list(entry.staff_next_steps)


def test_one_faq_topic_by_code(client: TestClient) -> None:
    """An FAQ topic answers with the text the bot sends."""
    body = client.get("/api/v1/policies/processing_time").json()
    assert body["kind"] == "faq"
    assert body["answer"] == get_catalogue().faq["processing_time"].answer


def test_unknown_policy_code_is_a_chinese_404(client: TestClient) -> None:
    """Neither a blocker nor an FAQ code: 404 with a Chinese message."""
    resp = client.get("/api/v1/policies/free_houses")
    assert resp.status_code == 404
    assert resp.json()["code"] == "policy_not_found" and "没有找到" in resp.json()["message"]


def test_openapi_documents_the_shapes(client: TestClient) -> None:
    """The status and policy answers have named schemas in the OpenAPI document."""
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert {"ProjectStatusRead", "OpenBlockerRead", "CatalogueRead", "CatalogueBlockerRead"} <= set(
        schemas
    )
