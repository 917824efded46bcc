"""The job's training data: nlu_data/ minus the held-out set, plus the annotations (never one
equal to a held-out sentence; a maintainer's label replaces the training file's)."""

from __future__ import annotations

from pathlib import Path

import pytest
from trainer import data
from trainer.errors import TrainerError

from .conftest import REPO

TRAINING = """version: "3.1"
nlu:
- intent: greet
  examples: |
    - 你好
    - 在吗
    - 早上好
- intent: ask_materials
  examples: |
    - 要带什么材料
    - 需要准备哪些证件
- regex: phone
  examples: |
    - (?<![0-9A-Za-z-])1[3-9]\\d{9}(?![0-9A-Za-z])
"""
CHITCHAT = """version: "3.1"
nlu:
- intent: thank
  examples: |
    - 谢谢
"""
HELDOUT = """version: "3.1"
nlu:
- intent: ask_materials
  examples: |
    - 办房本要带哪些材料？
"""


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    """A small nlu_data/ with its held-out set in test/."""
    nlu = tmp_path / "nlu_data"
    (nlu / "test").mkdir(parents=True)
    (nlu / "train.yml").write_text(TRAINING, encoding="utf-8")
    (nlu / "chitchat.yml").write_text(CHITCHAT, encoding="utf-8")
    (nlu / "test" / "heldout.yml").write_text(HELDOUT, encoding="utf-8")
    return nlu, nlu / "test"


def _examples(directory: Path) -> list[tuple[str, str]]:
    return sorted(data.iter_intent_examples(data.yaml_files(directory)))


def test_normalise_ignores_markup_width_script_case_and_punctuation() -> None:
    """The same sentence typed differently has one key."""
    assert data.normalise("办房本要带哪些材料？") == data.normalise("辦房本要帶哪些材料")
    assert data.normalise("[观象山庄](address)３号楼") == data.normalise("观象山庄3号楼!")
    assert data.normalise("Hi 你好") == data.normalise("hi你好")
    assert data.normalise("你好") != data.normalise("您好")


def test_annotations_join_the_training_files_but_never_the_held_out_set(
    dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    """Held-out lookalikes are dropped, relabelled examples replace the file's, duplicates
    count once; unchanged files are copied byte for byte, test/ is not copied."""
    nlu, heldout = dirs
    annotations = """version: "3.1"
nlu:
- intent: ask_materials
  examples: |
    - 辦房本要帶哪些材料
    - 在吗
    - 过户要带啥
    - 过户要带啥！
- intent: greet
  examples: |
    - 有人吗
"""
    report = data.build(tmp_path / "out", nlu, heldout, annotations)
    out = tmp_path / "out"
    assert not (out / "nlu_data" / "test").exists()
    assert (out / "nlu_data" / "chitchat.yml").read_bytes() == (nlu / "chitchat.yml").read_bytes()
    texts = _examples(out)
    assert ("ask_materials", "在吗") in texts  # the maintainer's label
    assert ("greet", "在吗") not in texts
    assert ("ask_materials", "过户要带啥") in texts
    assert ("greet", "有人吗") in texts
    assert all(data.normalise(t) != data.normalise("办房本要带哪些材料") for _, t in texts)
    assert sum(1 for _, t in texts if data.normalise(t) == data.normalise("过户要带啥")) == 1
    rewritten = (out / "nlu_data" / "train.yml").read_text(encoding="utf-8")
    assert "(?<![0-9A-Za-z-])1[3-9]\\d{9}(?![0-9A-Za-z])" in rewritten  # regexes kept
    facts = report.as_metrics()
    assert facts["annotated"] == 5
    assert facts["annotated_dropped_heldout"] == 1
    assert facts["annotated_duplicates"] == 1
    assert facts["training_examples_replaced"] == 1
    assert facts["training_examples_relabelled"] == 1
    assert facts["examples"] == len(texts) == 8


def test_subset_keeps_the_first_examples_of_each_intent(
    dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    """TRAINER_DATA_SUBSET=N: at most N examples of each intent of nlu_data/; annotations
    are all kept."""
    nlu, heldout = dirs
    annotations = 'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - 嗨\n'
    report = data.build(tmp_path / "out", nlu, heldout, annotations, subset=1)
    texts = _examples(tmp_path / "out")
    assert texts == sorted(
        [("greet", "你好"), ("greet", "嗨"), ("ask_materials", "要带什么材料"), ("thank", "谢谢")]
    )
    assert report.as_metrics()["subset_dropped"] == 3


def test_the_files_are_valid_rasa_nlu_data(tmp_path: Path) -> None:
    """The real nlu_data/ with annotations, rewritten in part (subset), loads in Rasa as the
    same examples."""
    from rasa.shared.nlu.training_data.loading import load_data

    annotations = 'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - 小助手早上好呀\n'
    report = data.build(
        tmp_path / "out", REPO / "nlu_data", REPO / "nlu_data" / "test", annotations, subset=5
    )
    loaded = load_data(str(tmp_path / "out"))
    assert len(loaded.intent_examples) == report.as_metrics()["examples"]
    assert loaded.regex_features, "the entity regexes are kept"
    assert any(m.get("text") == "小助手早上好呀" for m in loaded.intent_examples)


@pytest.mark.parametrize("text", ["nlu: [unclosed", "- just a list\n", "nlu:\n  intent: greet\n"])
def test_training_data_that_is_no_nlu_yaml_is_a_short_error(
    dirs: tuple[Path, Path], tmp_path: Path, text: str
) -> None:
    """Bad YAML from the api: a TrainerError whose message quotes none of it."""
    nlu, heldout = dirs
    with pytest.raises(TrainerError) as raised:
        data.build(tmp_path / "out", nlu, heldout, text)
    assert "unclosed" not in str(raised.value) and "greet" not in str(raised.value)
