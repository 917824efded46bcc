"""One turn's reply: texts rendered from the domain's responses, sent as few short bubbles.

Every sentence a resident reads is a response in bot/domain/ (or catalogue text from the api);
this module only fills the templates and keeps the reply tidy: no message or sentence twice,
at most one error and one fallback, "不是您的过错" at most once.
"""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk.executor import CollectingDispatcher

_SENTENCE = re.compile(r"[^。！？!?\n]+[。！？!?]?")
# "Not your fault" said once per reply (the catalogue says it under several blockers).
_FAULT = re.compile(r"不是您的过错|不是你的过错|您就没有过错|您没有过错")


class _SafeDict(dict):  # type: ignore[type-arg]
    def __missing__(self, key: str) -> str:
        return ""


class Reply:
    """Collects the bubbles of one turn and sends them through the dispatcher at the end."""

    def __init__(self, domain: dict[str, Any], seed: int = 0) -> None:
        """Start an empty reply over the domain's responses (`seed` picks among variants)."""
        self.seed = seed
        self.responses: dict[str, list[dict[str, Any]]] = domain.get("responses") or {}
        self.bubbles: list[dict[str, Any]] = []
        self.kinds: set[str] = set()

    def text(self, name: str, /, **values: Any) -> str:
        """The text of response `name` with its {placeholders} filled (empty when missing)."""
        variants = self.responses.get(name) or []
        if not variants:
            return ""
        # Variants rotate with the conversation's length: varied, yet the same run replays alike.
        variant = variants[self.seed % len(variants)]
        return str(variant.get("text") or "").format_map(_SafeDict(values))

    def buttons_of(self, name: str) -> list[dict[str, str]]:
        """The buttons a response defines."""
        variants = self.responses.get(name) or []
        return [dict(b) for b in (variants[0].get("buttons") or [])] if variants else []

    def say(self, name: str, /, *, kind: str | None = None, **values: Any) -> None:
        """Add a response as one bubble (with its own buttons); `kind` caps errors/fallbacks."""
        if kind:
            if kind in self.kinds:
                return
            self.kinds.add(kind)
        self.add(self.text(name, **values), buttons=self.buttons_of(name))

    def add(self, text: str, buttons: list[dict[str, str]] | None = None) -> None:
        """Add a bubble of ready text (catalogue text or text joined from responses)."""
        text = (text or "").strip()
        if text or buttons:
            self.bubbles.append({"text": text, "buttons": list(buttons or [])})

    def buttons(self, buttons: list[dict[str, str]]) -> None:
        """Attach buttons to the last bubble (replacing any it had)."""
        if not self.bubbles:
            self.bubbles.append({"text": "", "buttons": []})
        self.bubbles[-1]["buttons"] = list(buttons)

    def has(self, kind: str) -> bool:
        """Whether a bubble of this kind (error, fallback) was already added."""
        return kind in self.kinds

    @property
    def empty(self) -> bool:
        """Nothing to say yet."""
        return not any(b["text"] or b["buttons"] for b in self.bubbles)

    def tidy(self) -> list[dict[str, Any]]:
        """The bubbles without repeated sentences, repeated "过错" lines or empty bubbles."""
        seen: set[str] = set()
        fault_said = False
        out: list[dict[str, Any]] = []
        for bubble in self.bubbles:
            kept_lines = []
            for line in bubble["text"].split("\n"):
                kept = []
                for sentence in _SENTENCE.findall(line):
                    key = sentence.strip(" 。！？!?·")
                    if not key:
                        continue
                    if key in seen:
                        continue
                    if _FAULT.search(key):
                        if fault_said:
                            continue
                        fault_said = True
                    seen.add(key)
                    kept.append(sentence)
                if kept:
                    kept_lines.append("".join(kept).strip())
            text = "\n".join(line for line in kept_lines if line)
            buttons = bubble["buttons"]
            if text or buttons:
                out.append({"text": text, "buttons": buttons})
        # Buttons only on the last bubble that has them, so a chat shows one row of choices.
        return out

    def send(self, dispatcher: CollectingDispatcher) -> None:
        """Send the tidied bubbles."""
        for bubble in self.tidy():
            if bubble["buttons"]:
                dispatcher.utter_message(text=bubble["text"], buttons=bubble["buttons"])
            else:
                dispatcher.utter_message(text=bubble["text"])
