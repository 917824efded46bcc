"""Finding the home: address fragments assembled across turns, candidates, ID with name."""

from __future__ import annotations

import re
from typing import Any

from actions import status, text
from actions.clients import api
from actions.sensitive import seal, unseal
from actions.turnstate import TurnState

MAX_CANDIDATES = 5
_CHOICE = re.compile(r"[（(]([A-Za-z0-9_\-]{1,32})[)）]\s*$")
_ORDINAL = {"第一个": 0, "第1个": 0, "第二个": 1, "第2个": 1, "第三个": 2, "第3个": 2, "第四个": 3}


class LookupFlow(TurnState):
    """Mixin of the turn: the lookup by address or by ID number and the owner's name."""

    # -- address ---------------------------------------------------------------------------

    def candidate_choice(self) -> dict[str, Any] | None:
        """The candidate the resident tapped (payload ends in its project code) or named."""
        candidates = self.get("candidates") or []
        if not candidates:
            return None
        tapped = _CHOICE.search(self.message)
        if tapped:
            code = tapped.group(1)
            label = self.message[: tapped.start()].strip()
            for candidate in candidates:
                if candidate["code"] == code and (
                    not label or candidate["label"] == label or len(candidates) == 1
                ):
                    return dict(candidate)
            for candidate in candidates:
                if candidate["code"] == code:
                    return dict(candidate)
        for word, index in _ORDINAL.items():
            if word in self.message and index < len(candidates):
                return dict(candidates[index])
        typed = text.project_words(self.message)
        if typed:
            hits = [c for c in candidates if typed in c["label"] or c["label"] in self.message]
            if len(hits) == 1:
                return dict(hits[0])
        return None

    def is_address(self, entities: dict[str, str]) -> bool:
        """Whether this message gives (part of) a home's address."""
        if entities.get("address"):
            return True
        parts = text.address_parts(self.message)
        if parts and (self.get("home") or self.get("parts") or text.project_words(self.message)):
            return True
        if parts.get("building") or parts.get("unit"):
            return True
        return False

    async def lookup_address(self, entities: dict[str, str]) -> None:
        """Assemble the address from this message and what is known, look it up, answer."""
        typed = entities.get("address") or self.message
        parts = text.address_parts(typed)
        words = text.project_words(typed)
        home = self.get("home") or {}
        pending = dict(self.get("parts") or {})
        if words and len(words) >= 2 and text.has_chinese(words):
            query = text.normalize(typed)
            for junk in ("我家是", "我家在", "我家", "我住在", "我住"):
                query = query.replace(junk, "")
            self.set("parts", parts or None)
            await self.run_lookup(query, parts, new_project=True)
            return
        if not parts:
            self.reply.say("utter_invalid_address", kind="error")
            self.ask("address", "utter_ask_address_short", task="lookup")
            return
        if not home.get("name") and typed != self.message and text.project_words(self.message):
            # The address entity caught only "1号楼1单元301"; the estate is elsewhere in the text.
            try:
                result = await api.lookup(self.sender_id, address=self.message[:120])
            except (api.ApiUnavailable, api.ApiError):
                result = {}
            if result.get("match") in ("unit", "project", "ambiguous"):
                self.set("address", self.message[:120])
                await self.answer_lookup(result, parts, new_project=True, quiet=False)
                return
        merged = _merge(pending or _home_parts(home), parts)
        if home.get("name"):
            self.set("parts", merged)
            query = f"{home['name']}{text.unit_text(merged)}"
            await self.run_lookup(query, merged, new_project=False)
            return
        # A fragment with no project yet: keep it and ask which estate.
        self.set("parts", merged)
        self.ask("project", "utter_ask_project_for_parts", task="lookup")

    async def run_lookup(
        self,
        query: str,
        parts: dict[str, str],
        *,
        new_project: bool,
        quiet_if_same: bool = True,
        code: str | None = None,
    ) -> None:
        """POST /lookup with the assembled address and answer for every kind of match."""
        self.set("address", query)
        try:
            result = await api.lookup(self.sender_id, address=query)
        except api.ApiUnavailable:
            self.reply.say("utter_api_down", kind="error")
            self.end_task()
            return
        except api.ApiError as error:
            if error.status == 429:
                self.reply.add(error.message)
                self.end_task()
                return
            result = {"match": "none", "message": error.message}
        await self.answer_lookup(result, parts, new_project=new_project, quiet=quiet_if_same)

    async def lookup_id(self, id_number: str, person_name: str) -> None:
        """POST /lookup by ID number and owner's name."""
        try:
            result = await api.lookup(self.sender_id, id_number=id_number, person_name=person_name)
        except api.ApiUnavailable:
            self.reply.say("utter_api_down", kind="error")
            self.end_task()
            return
        except api.ApiError as error:
            if error.status == 422:
                self.reply.say("utter_invalid_id_number", kind="error")
            else:
                self.reply.add(error.message)
            self.set("id_number", None)
            self.set("person_name", None)
            self.end_task()
            return
        self.set("id_number", None)
        self.set("person_name", None)
        await self.answer_lookup(result, {}, new_project=True, quiet=False)

    async def answer_lookup(
        self,
        result: dict[str, Any],
        parts: dict[str, str],
        *,
        new_project: bool,
        quiet: bool,
    ) -> None:
        """Answer a lookup result: found, unit not in the ledger, candidates, or not found."""
        match = result.get("match")
        previous = self.get("home") or {}
        self.end_task()
        if match in ("unit", "project"):
            home = status.home_from_result(result)
            self.set("home", home)
            self.set("candidates", None)
            self.set("lookup_failures", 0.0)
            if result.get("unit_not_found"):
                self.set("parts", parts or None)
                hint = str(result.get("units_hint") or "").strip()
                if hint and hint[-1] not in "。！？":
                    hint += "。"
                self.reply.say(
                    "utter_unit_not_found",
                    kind="error",
                    project=home.get("name"),
                    requested=text.unit_text(parts) or self.reply.text("utter_this_room"),
                    hint=hint,
                )
                return
            same_project = previous.get("code") == home.get("code")
            if match == "project" and same_project and quiet and not new_project:
                # A fragment that does not reach a unit yet: no second status answer.
                self.set("parts", parts or None)
                need = "utter_parts_need_room" if parts.get("unit") else "utter_parts_need_unit"
                self.reply.say(need, got=text.unit_text(parts))
                return
            self.set("parts", None if match == "unit" else (parts or None))
            status.summary(self.reply, result)
            self.explained(list((result.get("status") or {}).get("open_blockers") or []))
            return
        if match == "ambiguous" and result.get("candidates"):
            candidates = []
            for item in result["candidates"][:MAX_CANDIDATES]:
                project = item.get("project") or {}
                unit = item.get("unit") or {}
                label = f"{project.get('name', '')}{text.unit_text(unit)}"
                candidates.append(
                    {
                        "code": project.get("code"),
                        "name": project.get("name"),
                        "label": label,
                        **{k: str(unit.get(k) or "") for k in ("building", "unit", "room")},
                    }
                )
            self.set("candidates", candidates)
            self.reply.say("utter_ambiguous_address")
            self.reply.buttons(self.candidate_buttons(candidates))
            return
        failures = int(self.get("lookup_failures") or 0) + 1
        self.set("lookup_failures", float(failures))
        self.set("parts", None)
        if result.get("message"):
            self.reply.add(str(result["message"]))
        if failures >= 2:
            self.reply.say("utter_not_found_twice", kind="error")
            self.offer_human()
        elif not result.get("message"):
            self.reply.say("utter_not_found", kind="error")

    def candidate_buttons(self, candidates: list[dict[str, Any]]) -> list[dict[str, str]]:
        """Buttons for the candidates: the payload carries the project code."""
        buttons = [
            {"title": c["label"], "payload": f"{c['label']}（{c['code']}）"} for c in candidates
        ]
        buttons += self.reply.buttons_of("utter_none_of_candidates_button")
        return buttons

    async def pick_candidate(self, candidate: dict[str, Any]) -> None:
        """Look up the candidate the resident chose, by its project's own name and the unit."""
        parts = {k: candidate.get(k) or "" for k in ("building", "unit", "room")}
        parts = {k: v for k, v in parts.items() if v}
        self.set("candidates", None)
        await self.run_lookup(
            f"{candidate['name']}{text.unit_text(parts)}", parts, new_project=True
        )

    # -- ID number --------------------------------------------------------------------------

    async def id_given(self, id_number: str, entities: dict[str, str]) -> None:
        """An ID number arrived: check it, then look up with the name (asked if missing)."""
        if not text.valid_id_number(id_number):
            self.reply.say("utter_invalid_id_number", kind="error")
            return
        self.set("id_number", seal(id_number))
        name = entities.get("person_name") or text.name_beside_id(self.message)
        name = name or unseal(self.get("person_name"))
        if name:
            await self.lookup_id(id_number, text.normalize(name))
            return
        self.ask("person_name", "utter_ask_owner_name", task="lookup_id")

    async def owner_name_given(self) -> bool:
        """The answer to "the owner's name?"; False when the message is no name."""
        name = text.name_from_text(self.message)
        id_number = unseal(self.get("id_number"))
        if not name or not id_number:
            return False
        await self.lookup_id(id_number, name)
        return True


def _home_parts(home: dict[str, Any]) -> dict[str, str]:
    if not home.get("unit_found"):
        return {}
    return {k: str(home.get(k) or "") for k in ("building", "unit", "room") if home.get(k)}


def _merge(known: dict[str, str], new: dict[str, str]) -> dict[str, str]:
    """New parts override; a new building starts afresh, a new unit drops the old room."""
    if new.get("building"):
        return dict(new)
    merged = dict(known)
    if new.get("unit"):
        merged.pop("room", None)
    merged.update(new)
    return merged
