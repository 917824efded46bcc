"""Input channels for residents' messages (REST, WeChat) and the checks they all apply.

Every channel that carries residents' text must pass it through `clean_user_text` (or at
least `neutralize_slash`) before it reaches Rasa: Rasa's `RegexMessageHandler` turns a text
starting with "/" into an intent with entities (`/inform{"id_number": ...}`), which would let
anyone set slots by typing. Buttons therefore carry plain-text payloads the NLU understands.

While a clerk has taken a conversation over the bot answers a turn with only the custom
message `{"takeover": true}` (TAKEOVER_MARKER): the channels send nothing to the resident then,
which is not the same as a turn with no message at all (a failure, answered with an apology).
"""

from __future__ import annotations

MAX_MESSAGE_CHARS = 500
TOO_LONG_REPLY = (
    "您的消息有点长（超过{limit}字），我一次读不完。"
    "请分几条发给我，或者先简单说说您想问什么，比如“我家房本为什么办不下来”。"
)
EMPTY_REPLY = "我没有收到文字内容。请直接告诉我您想问什么，比如小区名称和楼号。"
FULL_WIDTH_SLASH = "／"
TAKEOVER_MARKER = {"takeover": True}


def is_takeover_marker(message: object) -> bool:
    """True for the bot's "a clerk is answering, say nothing" output (a custom json message)."""
    if not isinstance(message, dict):
        return False
    custom = message.get("custom")
    return isinstance(custom, dict) and custom.get("takeover") is True


def without_takeover_markers(messages: list[dict]) -> tuple[list[dict], bool]:
    """`(messages without the marker, whether there was one)`."""
    kept = [m for m in messages if not is_takeover_marker(m)]
    return kept, len(kept) != len(messages)


def neutralize_slash(text: str) -> str:
    """Return the text with a leading "/" (after any whitespace) turned into a full-width "／".

    Rasa strips whitespace before looking for the "/" prefix, so leading whitespace is removed
    too; the rest of the text is kept as typed.
    """
    if not isinstance(text, str):
        return text
    stripped = text.lstrip()
    if stripped.startswith("/"):
        return FULL_WIDTH_SLASH + stripped[1:]
    return text


def clean_user_text(
    text: str | None, limit: int = MAX_MESSAGE_CHARS
) -> tuple[str | None, str | None]:
    """`(text_for_rasa, None)`, or `(None, polite_reply)` when the text is empty or too long."""
    if text is None or not str(text).strip():
        return None, EMPTY_REPLY
    text = str(text)
    if len(text) > limit:
        return None, TOO_LONG_REPLY.format(limit=limit)
    return neutralize_slash(text), None
