"""Entity extractor for addresses and names: a linear-chain CRF over characters.

Rasa's CRFEntityExtractor tags jieba tokens, and a name jieba has never seen is one token it
knows nothing about (validation recall of person_name 0.23); DIET learns them but needs
minutes of TensorFlow. Tagging characters (BIO) with the characters around them, the jieba
word they sit in and a few character classes learns the cues (「我叫…」, 「…号楼…单元…」) in
seconds with python-crfsuite (a Rasa dependency). Predicted spans are widened to whole jieba
tokens, as entity annotations are.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pycrfsuite
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.shared.nlu.constants import (
    ENTITIES,
    ENTITY_ATTRIBUTE_CONFIDENCE,
    ENTITY_ATTRIBUTE_END,
    ENTITY_ATTRIBUTE_START,
    ENTITY_ATTRIBUTE_TYPE,
    ENTITY_ATTRIBUTE_VALUE,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

MODEL_FILE = "char_crf.crfsuite"
# Common Chinese surnames (single and compound): a cue for the first character of a name.
SURNAMES = set(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛"
    "郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰"
    "焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁"
    "蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂"
    "全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝"
)
COMPOUND_SURNAMES = {"欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "令狐"}


def _char_class(ch: str) -> str:
    """A coarse class of a character: digit, Chinese numeral, Latin, Han, punctuation, space."""
    if ch.isdigit():
        return "D"
    if ch in "〇零一二三四五六七八九十百幺两":
        return "N"
    if ch.isascii() and ch.isalpha():
        return "L"
    if "\u4e00" <= ch <= "\u9fff":
        return "H"
    if ch.isspace():
        return "S"
    return "P"


def _token_spans(message: Message, text: str) -> list[tuple[int, int]]:
    """(start, end) of the tokenizer's tokens; one token per character without a tokenizer."""
    tokens = message.get(TOKENS_NAMES[TEXT]) or []
    spans = [(t.start, t.end) for t in tokens if t.end > t.start]
    return spans or [(i, i + 1) for i in range(len(text)) if not text[i].isspace()]


def char_features(text: str, spans: list[tuple[int, int]]) -> list[dict[str, float]]:
    """CRF features of every character of `text`, given the token spans."""
    word_of: list[str] = [""] * len(text)
    position: list[str] = ["O"] * len(text)
    for start, end in spans:
        word = text[start:end]
        for i in range(start, min(end, len(text))):
            word_of[i] = word
            if end - start == 1:
                position[i] = "S"
            else:
                position[i] = "B" if i == start else ("E" if i == end - 1 else "M")
    padded = ["<s>", "<s>"] + list(text) + ["</s>", "</s>"]
    features = []
    for i, ch in enumerate(text):
        p = i + 2
        f: dict[str, float] = {
            "bias": 1.0,
            f"c0={ch}": 1.0,
            f"c-1={padded[p - 1]}": 1.0,
            f"c+1={padded[p + 1]}": 1.0,
            f"c-2={padded[p - 2]}": 1.0,
            f"c+2={padded[p + 2]}": 1.0,
            f"c-1c0={padded[p - 1]}{ch}": 1.0,
            f"c0c+1={ch}{padded[p + 1]}": 1.0,
            f"c-2c-1={padded[p - 2]}{padded[p - 1]}": 1.0,
            f"c+1c+2={padded[p + 1]}{padded[p + 2]}": 1.0,
            f"class={_char_class(ch)}": 1.0,
            f"class-1={_char_class(padded[p - 1][0])}": 1.0,
            f"class+1={_char_class(padded[p + 1][0])}": 1.0,
            f"pos={position[i]}": 1.0,
            f"wordlen={min(len(word_of[i]), 5)}": 1.0,
        }
        word = word_of[i]
        if word:
            f[f"word={word}"] = 1.0
            f[f"pos={position[i]}|class={_char_class(ch)}"] = 1.0

        if ch in SURNAMES:
            f["surname"] = 1.0
        if text[i : i + 2] in COMPOUND_SURNAMES:
            f["surname2"] = 1.0
        features.append(f)
    return features


def bio_labels(text: str, entities: list[dict[str, Any]], types: set[str]) -> list[str]:
    """BIO tag of every character from the annotated entities of the given types."""
    labels = ["O"] * len(text)
    for ent in entities:
        if ent.get(ENTITY_ATTRIBUTE_TYPE) not in types:
            continue
        start, end = int(ent[ENTITY_ATTRIBUTE_START]), int(ent[ENTITY_ATTRIBUTE_END])
        for i in range(start, min(end, len(text))):
            labels[i] = ("B-" if i == start else "I-") + ent[ENTITY_ATTRIBUTE_TYPE]
    return labels


def decode(labels: list[str], marginals: list[float]) -> list[tuple[str, int, int, float]]:
    """(type, start, end, mean marginal) of each BIO span."""
    spans: list[tuple[str, int, int, float]] = []
    current: list[Any] | None = None
    for i, label in enumerate(labels + ["O"]):
        kind = label[2:] if label != "O" else None
        continues = current is not None and label.startswith("I-") and kind == current[0]
        if current is not None and not continues:
            start, end = current[1], i
            spans.append((current[0], start, end, sum(marginals[start:end]) / (end - start)))
            current = None
        if kind and current is None:
            current = [kind, i]
    return spans


def snap(start: int, end: int, spans: list[tuple[int, int]]) -> tuple[int, int]:
    """Widen (start, end) to the boundaries of the tokens it overlaps."""
    inside = [(s, e) for s, e in spans if s < end and e > start]
    if not inside:
        return start, end
    return min(start, inside[0][0]), max(end, inside[-1][1])


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=True)
class CharCRFEntityExtractor(EntityExtractorMixin, GraphComponent):
    """Character-level CRF extractor of the configured entity types."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """`entities`: the types it learns (None: all annotated); crfsuite's L1/L2 and passes."""
        return {"entities": None, "c1": 0.05, "c2": 0.05, "max_iterations": 150}

    @staticmethod
    def required_packages() -> list[str]:
        """None beyond Rasa's own: python-crfsuite (import name and distribution name differ)."""
        return []

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        model: bytes | None = None,
    ) -> None:
        """An extractor, trained when the crfsuite `model` (file contents) is given."""
        self.config = {**self.get_default_config(), **config}
        self._model_storage = model_storage
        self._resource = resource
        self.tagger: pycrfsuite.Tagger | None = None
        self._set_model(model)

    def _set_model(self, model: bytes | None) -> None:
        # The tagger reads the model in place: the bytes must live as long as the tagger.
        self._model = model
        if model is not None:
            self.tagger = pycrfsuite.Tagger()
            self.tagger.open_inmemory(model)

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> CharCRFEntityExtractor:
        """A new, untrained extractor."""
        return cls(config, model_storage, resource)

    def _types(self, training_data: TrainingData) -> set[str]:
        if self.config["entities"]:
            return set(self.config["entities"])
        return set(training_data.entities)

    def train(self, training_data: TrainingData) -> Resource:
        """Fit the CRF on every example with a text (examples without entities teach "O")."""
        types = self._types(training_data)
        trainer = pycrfsuite.Trainer(verbose=False)
        trainer.set_params(
            {
                "c1": float(self.config["c1"]),
                "c2": float(self.config["c2"]),
                "max_iterations": int(self.config["max_iterations"]),
                "feature.possible_transitions": True,
            }
        )
        count = 0
        for example in training_data.nlu_examples:
            text = example.get(TEXT)
            if not isinstance(text, str) or not text:
                continue
            features = char_features(text, _token_spans(example, text))
            trainer.append(features, bio_labels(text, example.get(ENTITIES) or [], types))
            count += 1
        if not count:
            return self._resource
        with tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch) / MODEL_FILE
            trainer.train(str(path))
            data = path.read_bytes()
        with self._model_storage.write_to(self._resource) as directory:
            (directory / MODEL_FILE).write_bytes(data)
        self._set_model(data)
        return self._resource

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> CharCRFEntityExtractor:
        """The trained extractor, or an untrained one when nothing was trained."""
        try:
            with model_storage.read_from(resource) as directory:
                data = (directory / MODEL_FILE).read_bytes()
        except (ValueError, FileNotFoundError):
            return cls(config, model_storage, resource)
        return cls(config, model_storage, resource, data)

    def extract(self, message: Message) -> list[dict[str, Any]]:
        """The entities the CRF finds in one message, on token boundaries."""
        text = message.get(TEXT)
        if self.tagger is None or not isinstance(text, str) or not text:
            return []
        spans = _token_spans(message, text)
        self.tagger.set(char_features(text, spans))
        labels = self.tagger.tag()
        marginals = [self.tagger.marginal(label, i) for i, label in enumerate(labels)]
        entities = []
        for kind, start, end, confidence in decode(labels, marginals):
            start, end = snap(start, end, spans)
            value = text[start:end].strip()
            if not value:
                continue
            entities.append(
                {
                    ENTITY_ATTRIBUTE_TYPE: kind,
                    ENTITY_ATTRIBUTE_START: start,
                    ENTITY_ATTRIBUTE_END: end,
                    ENTITY_ATTRIBUTE_VALUE: text[start:end],
                    ENTITY_ATTRIBUTE_CONFIDENCE: float(confidence),
                }
            )
        return entities

    def process(self, messages: list[Message]) -> list[Message]:
        """Append the extracted entities to each message."""
        for message in messages:
            entities = self.add_extractor_name(self.extract(message))
            message.set(ENTITIES, message.get(ENTITIES, []) + entities, add_to_output=True)
        return messages
