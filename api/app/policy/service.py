"""Serving the policy catalogue: the whole of it, or one blocker or FAQ topic by code."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from app.policy.catalogue import Catalogue, GuidanceSection, get_catalogue


def _section(section: GuidanceSection) -> dict[str, Any]:
    return {"title": section.title, "items": list(section.items), "note": section.note}


def _policy_refs(cat: Catalogue, codes: tuple[str, ...]) -> list[dict[str, str]]:
    return [{"code": p.code, "name": p.name, "summary": p.summary} for p in cat.policies_of(codes)]


def blocker_entry(code: str, *, catalogue: Catalogue | None = None) -> dict[str, Any]:
    """One blocker type with departments and policies expanded (KeyError if unknown)."""
    cat = catalogue or get_catalogue()
    blk = cat.blockers[code]
    return {
        "kind": "blocker",
        "code": blk.code,
        "name": blk.name,
        "explanation": blk.explanation,
        "departments": [{"code": d.code, "name": d.name} for d in cat.blocker_departments(code)],
        "buyer_at_fault": blk.buyer_at_fault,
        "policies": _policy_refs(cat, blk.policies),
        "resident_next_steps": list(blk.resident_next_steps),
        "staff_next_steps": list(blk.staff_next_steps),
        "time_limit": blk.time_limit,
        "time_limit_working_days": blk.time_limit_working_days,
    }


def faq_entry(code: str, *, catalogue: Catalogue | None = None) -> dict[str, Any]:
    """One FAQ topic with its policies expanded (KeyError if unknown)."""
    cat = catalogue or get_catalogue()
    topic = cat.faq[code]
    return {
        "kind": "faq",
        "code": topic.code,
        "title": topic.title,
        "answer": topic.answer,
        "policies": _policy_refs(cat, topic.policies),
    }


def get_entry(code: str, *, catalogue: Catalogue | None = None) -> dict[str, Any] | None:
    """A blocker code or an FAQ topic code as served by `GET /policies/{code}`; None if neither."""
    cat = catalogue or get_catalogue()
    if code in cat.blockers:
        return blocker_entry(code, catalogue=cat)
    if code in cat.faq:
        return faq_entry(code, catalogue=cat)
    return None


def list_all(*, catalogue: Catalogue | None = None) -> dict[str, Any]:
    """The whole catalogue: blockers, FAQ topics, departments, policies, guidance, settings."""
    cat = catalogue or get_catalogue()
    g = cat.guidance
    return {
        "blockers": [blocker_entry(code, catalogue=cat) for code in cat.blockers],
        "faq": [faq_entry(code, catalogue=cat) for code in cat.faq],
        "departments": [
            {"code": d.code, "name": d.name, "aliases": list(d.aliases)}
            for d in cat.departments.values()
        ],
        "policies": [asdict(p) for p in cat.policies.values()],
        "guidance": {
            "materials": {k: _section(v) for k, v in g.materials.items()},
            "where_to_apply": _section(g.where_to_apply),
            "next_steps": {k: _section(v) for k, v in g.next_steps.items()},
        },
        "settings": asdict(cat.settings),
    }
