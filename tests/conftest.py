"""Shared fixtures. JAX runs strict here: implicit rank promotion is an error."""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Tests compile the same tiny programs many times over (a run, then its resume, in the test process and in the
# processes it starts): they share one persistent compilation cache, set here before jax reads its config.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(REPO / ".jax_cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
# Compiling, not running, is most of a tiny program's time: XLA's backend at optimisation level 0 compiles a tiny
# Transformer's train step in 3.4 s instead of 10.7 (a BiLSTM's in 2.0 s instead of 4.6), which is most of a
# fresh checkout's test time. The processes tests start get it too, through `xla_flags`.
FAST_COMPILE = "--xla_backend_optimization_level=0"


def xla_flags(*flags: str) -> str:
    """XLA_FLAGS for a process a test starts: `flags` and the suite's fast compilation."""
    return " ".join([*flags, FAST_COMPILE])


os.environ["XLA_FLAGS"] = xla_flags(os.environ.get("XLA_FLAGS", "")).strip()

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")

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


def checkpoint_state(workdir: Path, step: int | None = None) -> tuple[int, dict]:
    """(step, state as plain arrays on one device) of a run's checkpoint, whatever topology saved it."""
    import orbax.checkpoint as ocp

    mgr = ocp.CheckpointManager(workdir.absolute() / "checkpoints")
    step = mgr.latest_step() if step is None else step
    saved = ocp.StandardCheckpointer().metadata(workdir.absolute() / "checkpoints" / str(step) / "state")
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
                          saved.item_metadata.tree)
    state = mgr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target))).state
    mgr.close()
    return step, state


# Longest files first. `make test` hands each pytest-xdist worker one file at a time, in collection order: a long
# file collected last would run alone at the end while the other workers sit idle.
LONGEST_FIRST = ("test_classifiers.py", "test_language_models.py", "test_distributed.py", "test_analysis.py",
                 "test_resume.py", "test_cli.py", "test_train.py", "test_sampling.py", "test_sweeps.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a file keeps its tests' order
