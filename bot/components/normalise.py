"""Text normalisation first in the pipeline: traditional → simplified Chinese, NFKC.

Residents from Hong Kong, Taiwan or with a traditional-character input method write
「觀象山莊3號樓」; the training data, the jieba dictionary and the ledger use simplified
characters. Full-width letters, digits and punctuation (「３号楼」, 「ＸＦ－２０２６」) become
their ASCII forms. Both conversions keep the length and the position of every character, so
entity offsets computed on the normalised text are offsets into the text as typed.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData


@lru_cache(maxsize=4)
def _converter(config: str) -> Any:
    """An OpenCC converter (loaded once per process)."""
    import opencc

    return opencc.OpenCC(config)


# The channels turn a leading "/" into "／" so that Rasa never reads typed text as a command
# ("/restart", "/request_human"); folding it back to "/" here would re-arm those commands.
_KEEP = {"／"}


def _nfkc_char(ch: str) -> str:
    """NFKC form of one character, or the character itself when NFKC would change the length."""
    if ch in _KEEP:
        return ch
    folded = unicodedata.normalize("NFKC", ch)
    return folded if len(folded) == 1 else ch


def normalise_text(text: str, opencc_config: str = "t2s", nfkc: bool = True) -> str:
    """Simplified-Chinese, NFKC form of `text`, of the same length as `text`."""
    if not text:
        return text
    if nfkc:
        text = "".join(_nfkc_char(ch) for ch in text)
    if opencc_config:
        converter = _converter(opencc_config)
        converted = converter.convert(text)
        if len(converted) != len(text):
            # A phrase mapping changed the length: convert character by character instead.
            converted = "".join(c if len(c := converter.convert(ch)) == 1 else ch for ch in text)
        text = converted
    return text


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=False)
class ChineseTextNormaliser(GraphComponent):
    """Rewrites the message text to simplified Chinese (OpenCC) and NFKC, keeping offsets."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """`opencc_config`: OpenCC conversion ("" to skip); `nfkc`: fold full-width forms."""
        return {"opencc_config": "t2s", "nfkc": True}

    @staticmethod
    def required_packages() -> list[str]:
        """OpenCC's Python package."""
        return ["opencc"]

    def __init__(self, config: dict[str, Any]) -> None:
        """Keep the configuration."""
        self._opencc = config.get("opencc_config", "t2s") or ""
        self._nfkc = bool(config.get("nfkc", True))

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> ChineseTextNormaliser:
        """A new normaliser (nothing to train)."""
        return cls({**cls.get_default_config(), **config})

    def _normalise(self, message: Message) -> None:
        text = message.get(TEXT)
        if isinstance(text, str) and text:
            message.set(TEXT, normalise_text(text, self._opencc, self._nfkc))

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Normalise every training example, as messages are normalised at run time."""
        for example in training_data.training_examples:
            self._normalise(example)
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        """Normalise incoming messages."""
        for message in messages:
            self._normalise(message)
        return messages
