"""The custom NLU components in bot/components/: normalisation, intent classifier, selector.

Trained in-process on the training part of nlu_data/ (a few seconds, no TensorFlow), saved to
and loaded back from a model storage as Rasa does.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from components.char_crf import CharCRFEntityExtractor, decode, snap
from components.faq_selector import TfidfResponseSelector
from components.intent_classifier import TfidfIntentClassifier
from components.normalise import ChineseTextNormaliser, normalise_text
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.tokenizers.jieba_tokenizer import JiebaTokenizer
from rasa.shared.importers.importer import TrainingDataImporter
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message

from .conftest import REPO

TRADITIONAL = {
    "我家房本為什麼一直辦不下來": "ask_certificate_status",
    "觀象山莊3號樓2單元501": "inform",
    "開發商欠稅，我們能先辦證嗎": "policy_faq",
    "我要投訴，給我轉人工": "request_human",
    "謝謝你": "thank",
    "辦房本要帶哪些材料": "ask_materials",
}


def test_traditional_becomes_simplified() -> None:
    assert normalise_text("觀象山莊3號樓") == "观象山庄3号楼"
    assert normalise_text("開發商為什麼還沒辦證？") == "开发商为什么还没办证?"


def test_full_width_becomes_ascii_and_lengths_are_kept() -> None:
    assert normalise_text("观象山庄３号楼２单元５０１") == "观象山庄3号楼2单元501"
    assert normalise_text("ＸＦ－２０２６１１２３－０００７") == "XF-20261123-0007"
    for text in ("面积120㎡的房子", "①号楼", "觀象山莊3號樓", "", "abc"):
        assert len(normalise_text(text)) == len(text)


def test_simplified_text_is_unchanged() -> None:
    text = "观象山庄3号楼2单元501的房本什么时候能办"
    assert normalise_text(text) == text


def test_normaliser_rewrites_message_text() -> None:
    normaliser = ChineseTextNormaliser({"opencc_config": "t2s", "nfkc": True})
    [message] = normaliser.process([Message({TEXT: "觀象山莊３號樓"})])
    assert message.get(TEXT) == "观象山庄3号楼"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Normaliser, jieba tokenizer, classifier, extractor, selector trained, saved, loaded."""
    files = sorted(
        str(p)
        for p in (REPO / "nlu_data").rglob("*.yml")
        if (REPO / "nlu_data" / "test") not in p.parents
    )
    importer = TrainingDataImporter.load_from_dict(
        domain_path=str(REPO / "bot" / "domain"), training_data_paths=files
    )
    data = importer.get_nlu_data()
    storage = LocalModelStorage(Path(tmp_path_factory.mktemp("model")))
    context = ExecutionContext(GraphSchema({}), "test")
    normaliser = ChineseTextNormaliser({})
    tokenizer = JiebaTokenizer.create(
        {**JiebaTokenizer.get_default_config(), "dictionary_path": None},
        storage,
        Resource("tokenizer"),
        context,
    )
    data = tokenizer.process_training_data(normaliser.process_training_data(data))
    parts: dict = {"normaliser": normaliser, "tokenizer": tokenizer}
    for name, cls, config in (
        ("classifier", TfidfIntentClassifier, {}),
        ("extractor", CharCRFEntityExtractor, {"entities": ["address", "person_name"]}),
        ("selector", TfidfResponseSelector, {"retrieval_intent": "policy_faq"}),
    ):
        full = {**cls.get_default_config(), **config}
        component = cls.create(full, storage, Resource(name), context)
        resource = component.train(data)
        parts[name] = cls.load(full, storage, resource, context)
    return parts


def parse(parts: dict, text: str) -> Message:
    """Run a text through the trained components."""
    messages = [Message({TEXT: text})]
    for name in ("normaliser", "tokenizer", "classifier", "extractor", "selector"):
        messages = parts[name].process(messages)
    return messages[0]


@pytest.mark.parametrize("text,intent", sorted(TRADITIONAL.items()))
def test_traditional_sentences_get_their_intent(trained: dict, text: str, intent: str) -> None:
    message = parse(trained, text)
    assert message.get("intent")["name"] == intent, message.get("intent_ranking")


def test_ranking_is_sorted_and_sums_to_at_most_one(trained: dict) -> None:
    ranking = parse(trained, "我想问问我家房本办到哪一步了").get("intent_ranking")
    confidences = [r["confidence"] for r in ranking]
    assert confidences == sorted(confidences, reverse=True)
    assert 0.0 < sum(confidences) <= 1.0 + 1e-6
    assert {"name", "confidence"} == set(ranking[0])


def test_selector_output_is_response_selector_format(trained: dict) -> None:
    selector = parse(trained, "開發商把樓抵押了，我還能辦證嗎").get("response_selector")
    assert selector["all_retrieval_intents"] == ["policy_faq"]
    response = selector["policy_faq"]["response"]
    assert response["intent_response_key"] == "policy_faq/mortgage_seizure"
    assert response["utter_action"] == "utter_policy_faq/mortgage_seizure"
    assert response["responses"] and response["responses"][0].get("text")
    assert 0.0 < response["confidence"] <= 1.0
    ranking = selector["policy_faq"]["ranking"]
    assert ranking[0]["intent_response_key"] == "policy_faq/mortgage_seizure"
    assert {"id", "confidence", "intent_response_key"} == set(ranking[0])


def test_faq_topic_reads_the_selector(trained: dict) -> None:
    from actions.faq import faq_topic

    from .conftest import make_tracker

    message = parse(trained, "開發商欠稅我能辦證嗎")
    tracker = make_tracker(text=message.get(TEXT), intent="policy_faq")
    tracker.latest_message["response_selector"] = message.get("response_selector")
    assert faq_topic(tracker) == "tax_fee_separation"


def entities(message: Message) -> set[tuple[str, str]]:
    """(type, value) of the entities the learned extractor found."""
    return {
        (e["entity"], e["value"])
        for e in message.get("entities") or []
        if e.get("extractor") == "CharCRFEntityExtractor"
    }


@pytest.mark.parametrize(
    "text,expected",
    [
        ("观象山庄3号楼2单元501", {("address", "观象山庄3号楼2单元501")}),
        ("觀象山莊3號樓2單元501的房本", {("address", "观象山庄3号楼2单元501")}),
        ("我叫王建国，电话13912345678", {("person_name", "王建国")}),
        ("谢谢", set()),
    ],
)
def test_extractor_finds_addresses_and_names(trained: dict, text: str, expected: set) -> None:
    message = parse(trained, text)
    assert entities(message) == expected, message.get("entities")
    for e in message.get("entities"):
        assert message.get(TEXT)[e["start"] : e["end"]] == e["value"]


def test_bio_spans_are_decoded_and_snapped_to_tokens() -> None:
    labels = ["O", "B-person_name", "I-person_name", "O", "B-address", "I-address"]
    spans = decode(labels, [1.0] * len(labels))
    assert [(k, s, e) for k, s, e, _ in spans] == [("person_name", 1, 3), ("address", 4, 6)]
    # A span ending inside a token is widened to the token's end.
    assert snap(4, 5, [(0, 1), (1, 3), (3, 4), (4, 7)]) == (4, 7)


def test_untrained_components_pass_messages_through(tmp_path: Path) -> None:
    storage = LocalModelStorage(tmp_path)
    context = ExecutionContext(GraphSchema({}), "test")
    for cls in (TfidfIntentClassifier, TfidfResponseSelector, CharCRFEntityExtractor):
        component = cls.load(cls.get_default_config(), storage, Resource("missing"), context)
        [message] = component.process([Message({TEXT: "你好"})])
        assert message.get("intent") is None and message.get("response_selector") is None
        assert not message.get("entities")
