"""The contract's intents and entities (shared/DESIGN.md), which an annotation may use.

Kept here, not read from bot/domain at run time (the api and the bot meet only over HTTP);
tests/api/nlu/test_nlu_intents.py fails when this list and bot/domain drift apart.
"""

from __future__ import annotations

from app.policy.catalogue import get_catalogue

INTENTS: tuple[str, ...] = (
    "greet",
    "goodbye",
    "thank",
    "affirm",
    "deny",
    "bot_challenge",
    "ask_certificate_status",
    "inform",
    "ask_next_steps",
    "ask_materials",
    "ask_where_to_apply",
    "policy_faq",
    "complain",
    "request_human",
    "check_petition",
    "out_of_scope",
)
# A retrieval intent: an example is labelled with one of its topics, `policy_faq/<topic>`.
RETRIEVAL_INTENT = "policy_faq"
ENTITIES: tuple[str, ...] = (
    "address",
    "id_number",
    "contract_number",
    "petition_number",
    "phone",
    "person_name",
)
INTENT_LABELS = {
    "greet": "问候",
    "goodbye": "再见",
    "thank": "感谢",
    "affirm": "肯定",
    "deny": "否定",
    "bot_challenge": "问是不是机器人",
    "ask_certificate_status": "问房本办理情况",
    "inform": "提供信息（地址、证件号、电话等）",
    "ask_next_steps": "问下一步怎么办",
    "ask_materials": "问要带什么材料",
    "ask_where_to_apply": "问去哪里办",
    "complain": "抱怨、发泄",
    "request_human": "要找人、要信访",
    "check_petition": "查信访进度",
    "out_of_scope": "与房本无关",
}
ENTITY_LABELS = {
    "address": "地址",
    "id_number": "身份证号",
    "contract_number": "合同编号",
    "petition_number": "信访编号",
    "phone": "手机号",
    "person_name": "姓名",
}


def faq_topics() -> list[str]:
    """The catalogue's FAQ topics (policies/faq.yml), in catalogue order."""
    return list(get_catalogue().faq)


def annotation_intents() -> list[str]:
    """What an example may be labelled with: every intent, `policy_faq` only with a topic."""
    plain = [i for i in INTENTS if i != RETRIEVAL_INTENT]
    return plain + [f"{RETRIEVAL_INTENT}/{topic}" for topic in faq_topics()]


def is_annotation_intent(name: str) -> bool:
    """True for a contract intent other than bare `policy_faq`, or `policy_faq/<topic>`."""
    return name in annotation_intents()


def intent_label(name: str | None) -> str:
    """The Chinese label of an intent or FAQ topic, for the console."""
    if not name:
        return ""
    if name.startswith(RETRIEVAL_INTENT + "/"):
        code = name.split("/", 1)[1]
        topic = get_catalogue().faq.get(code)
        return f"政策问答：{topic.title if topic else code}"
    return INTENT_LABELS.get(name, name)
