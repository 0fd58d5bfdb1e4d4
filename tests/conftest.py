"""Shared fixtures. JAX runs strict here: implicit rank promotion is an error."""

import os
from pathlib import Path

import jax
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("NLPDL_DATA_DIR") or REPO.parent / "shared" / "data")


@pytest.fixture
def data_dir() -> Path:
    """The real datasets (../shared/data or $NLPDL_DATA_DIR); tests that need them skip without them."""
    if not all((DATA / name).is_file() for name in ("mr/rt-polarity.pos", "mr/rt-polarity.neg", "ptb/ptb.train.txt",
                                                    "ptb/ptb.valid.txt", "ptb/ptb.test.txt")):
        pytest.skip(f"real datasets not found under {DATA}")
    return DATA


@pytest.fixture(autouse=True)
def no_download(monkeypatch):
    """Tests never reach the network."""
    monkeypatch.setenv("NLPDL_DOWNLOAD", "0")
