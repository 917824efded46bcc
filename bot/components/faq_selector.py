"""Response selector for the retrieval intent `policy_faq`: which policy topic was asked.

A drop-in for Rasa's ResponseSelector (a DIET network trained for 40 epochs): the same
TF-IDF + logistic regression as the intent classifier, trained on the retrieval intent's
examples only, and the prediction written into message data `response_selector` in exactly
ResponseSelector's format, so `rasa test nlu` response-selection evaluation, Rasa's retrieval
actions and bot/actions/faq.py (`faq_topic()`) read it unchanged:

    {"all_retrieval_intents": ["policy_faq"],
     "policy_faq": {"response": {"responses": [...], "confidence": 0.93,
                                 "intent_response_key": "policy_faq/mortgage_seizure",
                                 "utter_action": "utter_policy_faq/mortgage_seizure"},
                    "ranking": [{"id": ..., "confidence": ..., "intent_response_key": ...}]}}
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import (
    RESPONSE_SELECTOR_DEFAULT_INTENT,
    RESPONSE_SELECTOR_PREDICTION_KEY,
    RESPONSE_SELECTOR_PROPERTY_NAME,
    RESPONSE_SELECTOR_RANKING_KEY,
    RESPONSE_SELECTOR_RESPONSES_KEY,
    RESPONSE_SELECTOR_RETRIEVAL_INTENTS,
    RESPONSE_SELECTOR_UTTER_ACTION_KEY,
)
from rasa.shared.nlu.constants import INTENT, INTENT_RESPONSE_KEY, PREDICTED_CONFIDENCE_KEY
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from rasa.shared.nlu.training_data.util import intent_response_key_to_template_key

from components.intent_classifier import fit_and_store, message_text, message_tokens
from components.sparse_text import DEFAULTS, SparseTextClassifier


def _label_id(key: str) -> int:
    """A stable numeric id for a response key (ResponseSelector's rankings carry one)."""
    return zlib.crc32(key.encode("utf-8"))


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class TfidfResponseSelector(GraphComponent):
    """Picks the sub-intent (`policy_faq/<topic>`) of a retrieval intent for every message."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """`retrieval_intent` (None: all retrieval intents, key "default") and model settings."""
        return {**DEFAULTS, "retrieval_intent": None, "ranking_length": 10}

    @staticmethod
    def required_packages() -> list[str]:
        """scikit-learn."""
        return ["sklearn"]

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        model: SparseTextClassifier | None = None,
        responses: dict[str, list[dict[str, Any]]] | None = None,
        all_retrieval_intents: list[str] | None = None,
    ) -> None:
        """A selector, trained when `model` is given."""
        self.config = {**self.get_default_config(), **config}
        self.retrieval_intent: str | None = self.config["retrieval_intent"]
        self._model_storage = model_storage
        self._resource = resource
        self.model = model
        self.responses = responses or {}
        self.all_retrieval_intents = all_retrieval_intents or []

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> TfidfResponseSelector:
        """A new, untrained selector."""
        return cls(config, model_storage, resource)

    def _is_trained_on(self, example: Message) -> bool:
        if not example.get(INTENT_RESPONSE_KEY) or not message_text(example):
            return False
        return self.retrieval_intent is None or example.get(INTENT) == self.retrieval_intent

    def train(self, training_data: TrainingData) -> Resource:
        """Fit on the retrieval intent's examples, labelled by their full response key."""
        self.all_retrieval_intents = sorted(training_data.retrieval_intents)
        self.responses = dict(training_data.responses)
        examples = [e for e in training_data.intent_examples if self._is_trained_on(e)]
        if not examples:
            return self._resource
        self.model = fit_and_store(
            {k: self.config[k] for k in DEFAULTS},
            examples,
            INTENT_RESPONSE_KEY,
            self._model_storage,
            self._resource,
        )
        with self._model_storage.write_to(self._resource) as directory:
            (directory / "responses.json").write_text(
                json.dumps(
                    {"responses": self.responses, "retrieval_intents": self.all_retrieval_intents},
                    ensure_ascii=False,
                ),
                encoding="utf-8",
            )
        return self._resource

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> TfidfResponseSelector:
        """The trained selector, or an untrained one when nothing was trained."""
        try:
            with model_storage.read_from(resource) as directory:
                model = SparseTextClassifier.load(directory)
                extra = json.loads((directory / "responses.json").read_text(encoding="utf-8"))
        except (ValueError, FileNotFoundError):
            return cls(config, model_storage, resource)
        return cls(
            config, model_storage, resource, model, extra["responses"], extra["retrieval_intents"]
        )

    def process(self, messages: list[Message]) -> list[Message]:
        """Write the selected response key and its ranking into `response_selector`."""
        if self.model is None or not messages:
            return messages
        probabilities = self.model.predict_proba(
            [message_text(m) for m in messages], [message_tokens(m) for m in messages]
        )
        selector_key = self.retrieval_intent or RESPONSE_SELECTOR_DEFAULT_INTENT
        for message, row in zip(messages, probabilities, strict=True):
            ranking = sorted(
                (
                    {
                        "id": _label_id(key),
                        PREDICTED_CONFIDENCE_KEY: float(p),
                        INTENT_RESPONSE_KEY: key,
                    }
                    for key, p in zip(self.model.classes, row, strict=True)
                ),
                key=lambda r: -r[PREDICTED_CONFIDENCE_KEY],
            )
            if self.config["ranking_length"] > 0:
                ranking = ranking[: self.config["ranking_length"]]
            top = ranking[0]
            key = top[INTENT_RESPONSE_KEY]
            template = intent_response_key_to_template_key(key)
            responses = self.responses.get(template) or [{"text": key}]
            prediction = {
                RESPONSE_SELECTOR_PREDICTION_KEY: {
                    RESPONSE_SELECTOR_RESPONSES_KEY: responses,
                    PREDICTED_CONFIDENCE_KEY: top[PREDICTED_CONFIDENCE_KEY],
                    INTENT_RESPONSE_KEY: key,
                    RESPONSE_SELECTOR_UTTER_ACTION_KEY: template,
                },
                RESPONSE_SELECTOR_RANKING_KEY: ranking,
            }
            properties = message.get(RESPONSE_SELECTOR_PROPERTY_NAME) or {}
            properties[RESPONSE_SELECTOR_RETRIEVAL_INTENTS] = self.all_retrieval_intents
            properties[selector_key] = prediction
            message.set(RESPONSE_SELECTOR_PROPERTY_NAME, properties, add_to_output=True)
        return messages
