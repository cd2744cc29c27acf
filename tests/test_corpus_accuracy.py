"""Regression guard: the acceptance figures of issue 3 on the shared Sisimai corpus.

The scoring is the bench's own (benches/accuracy.py, loaded by path since
benches/ is a folder of scripts, not a package), so this test and the figures
the bench prints can never drift apart. Skipped when ../shared/corpus is absent.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benches" / "accuracy.py"


def _load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("benches_accuracy", BENCH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


accuracy = _load_bench()
CORPUS = accuracy.DEFAULT_CORPUS
EXTRAS = CORPUS.parent / "sisimai-extra"

pytestmark = pytest.mark.skipif(
    not (CORPUS / "labels.json").is_file(), reason=f"shared corpus not found at {CORPUS}"
)


@pytest.fixture(scope="module")
def score():
    return accuracy.score_corpus(CORPUS)


@pytest.fixture(scope="module")
def extras():
    if not EXTRAS.is_dir():
        pytest.skip(f"sisimai-extra not found at {EXTRAS}")
    return accuracy.check_extras(EXTRAS)


def _worst(score, metric_name: str) -> str:
    """The largest disagreement groups, so a failure says where to look."""
    groups = score.disagreements(accuracy.METRIC_BY_NAME[metric_name])[:5]
    return "; ".join(f"{e} → {g} x{len(n)} ({', '.join(n[:3])})" for (e, g), n in groups)


def test_recipient_recall(score):
    figure = accuracy.ratio(score.found, score.rows)
    assert figure >= accuracy.FLOORS["recipient_recall"], _worst(score, "reason")


@pytest.mark.parametrize("metric", ["class", "reason", "status"])
def test_agreement(score, metric):
    figure = score.agreement(accuracy.METRIC_BY_NAME[metric])
    name = f"{metric}_agreement"
    assert figure >= accuracy.FLOORS[name], _worst(score, metric)


def test_extra_rows(score):
    worst = {f.name: [r.recipient for r in f.extra] for f in score.files if f.extra}
    assert score.extra_rows <= accuracy.CEILINGS["extra_rows"], worst


def test_no_crash_on_the_corpus(score):
    assert [f.name for f in score.files if f.parsed.crash] == []


@pytest.mark.parametrize("group", ["err", "not", "dos", "mac"])
def test_sisimai_extra(extras, group):
    """err: never raise; not: no failed row; dos, mac: the same facts as with LF."""
    assert extras.group(group), f"no messages in {EXTRAS / group}"
    assert {c.key: c.problem for c in extras.failures(group)} == {}
