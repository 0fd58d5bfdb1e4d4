"""Sweeps: expansion, early validation, --emit (and reporting its runs), and a 2x2x2-seed sweep that reports and skips on re-run."""

import json
import shlex

import pytest

from nlpdl import commands
from nlpdl import config as C
from nlpdl import sweeps


def test_expand_crosses_grid_with_zip_and_seeds():
    sweep = C.Sweep(grid={"model.activation": ("relu", "tanh")}, zip={"optim.name": ("sgd", "adam"),
                                                                       "optim.lr": ("0.5", "0.001")}, seeds=2)
    points = sweeps.expand(sweep)
    assert len(points) == 2 * 2 * 2
    assert points[0].values == {"model.activation": "relu", "optim.name": "sgd", "optim.lr": "0.5"}
    assert points[0].overrides == ["model.activation=relu", "optim.name=sgd", "optim.lr=0.5", "train.seed=0"]
    assert {(p.values["optim.name"], p.values["optim.lr"]) for p in points} == {("sgd", "0.5"), ("adam", "0.001")}
    assert len({p.name for p in points}) == len(points)


def test_zip_axes_of_unequal_length_are_refused():
    with pytest.raises(C.ConfigError, match="equal lengths"):
        sweeps.expand(C.Sweep(zip={"optim.name": ("sgd", "adam"), "optim.lr": ("0.1",)}))


def test_declared_sweep_resolves_and_command_line_extends_it():
    sweep = sweeps.resolve_sweep("mr_ffn", "activations", ["optim.lr=0.001,0.01"], [], None, [])
    assert sweep.seeds == 3 and set(sweep.grid) == {"model.activation", "optim.lr"}
    assert len(sweeps.plan("mr_ffn", sweep)) == 4 * 2 * 3
    with pytest.raises(C.ConfigError, match="declares no sweep 'nope'.*activations"):
        sweeps.resolve_sweep("mr_ffn", "nope", [], [], None, [])


def test_a_bad_point_fails_before_anything_runs(tmp_path, capsys):
    with pytest.raises(C.ConfigError, match="model.activation='rleu'"):
        commands.sweep("xor:tiny", [], grid=["model.activation=relu,rleu"], sweep_dir=str(tmp_path / "s"))
    assert not (tmp_path / "s").exists()


def test_emit_prints_one_train_line_per_point_and_runs_nothing(tmp_path, capsys):
    commands.sweep("xor:tiny", ["train.steps=20"], grid=["model.hidden=4,8"], seeds=2,
                   sweep_dir=str(tmp_path / "s"), emit=True)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and all(line.startswith("nlpdl train xor:tiny train.steps=20 model.hidden=") for line in lines)
    assert lines[1].endswith(f"train.seed=1 --workdir {tmp_path}/s/model.hidden=4,seed=1")
    assert [p.name for p in (tmp_path / "s").iterdir()] == ["sweep.json"]


def test_report_reads_the_runs_of_emitted_lines_once_they_finish(tmp_path, capsys):
    from nlpdl import cli

    commands.sweep("xor:tiny", ["train.steps=20"], grid=["model.hidden=4,8"], seeds=2, sweep_dir=str(tmp_path / "s"),
                   emit=True)
    lines = capsys.readouterr().out.strip().splitlines()
    for line in lines[:3]:  # as a scheduler would run them, one left unfinished
        assert cli.main([*shlex.split(line)[1:], "--no-progress"]) == 0
    assert cli.main(["report", str(tmp_path / "s")]) == 0
    report = (tmp_path / "s" / "report.md").read_text()
    assert "2/2" in report and "1/2" in report and "`model.hidden=8,seed=1`" in report
    with pytest.raises(C.ConfigError, match="holds a different sweep"):
        commands.sweep("xor:tiny", ["train.steps=20"], grid=["model.hidden=4,8"], seeds=3,
                       sweep_dir=str(tmp_path / "s"), emit=True)


def test_two_by_two_by_two_seed_sweep_reports_and_a_rerun_skips_every_point(data_dir, tmp_path, capsys):
    args = dict(grid=["model.hidden=4,8", "optim.lr=0.1,0.5"], seeds=2, sweep_dir=str(tmp_path / "s"),
                data_dir=str(data_dir), progress=False)
    commands.sweep("xor:tiny", ["train.steps=20"], **args)
    sweep_dir = tmp_path / "s"
    manifest = json.loads((sweep_dir / "sweep.json").read_text())
    assert len(manifest["points"]) == 8
    finished = sorted(sweep_dir.glob("*/results.json"))
    assert len(finished) == 8
    report = (sweep_dir / "report.md").read_text()
    assert report.count("2/2") == 4 and "| model.hidden | optim.lr | seeds |" in report
    for png in ("accuracy.png", "curves.png"):
        assert (sweep_dir / png).read_bytes().startswith(b"\x89PNG")
    stamps = {p: p.stat().st_mtime_ns for p in finished}
    capsys.readouterr()
    commands.sweep("xor:tiny", ["train.steps=20"], **args)
    assert capsys.readouterr().out.count("finished, skipped") == 8
    assert {p: p.stat().st_mtime_ns for p in finished} == stamps
    with pytest.raises(C.ConfigError, match="holds a different sweep"):
        commands.sweep("xor:tiny", ["train.steps=20"], **{**args, "seeds": 3})


def test_missing_data_fails_before_the_sweep_writes_anything(tmp_path):
    from nlpdl.data.sources import DataError

    with pytest.raises(DataError, match="missing data file"):
        commands.sweep("mr_ffn:tiny", [], seeds=2, sweep_dir=str(tmp_path / "s"), data_dir=str(tmp_path / "nodata"))
    assert not (tmp_path / "s").exists()


def test_seed_keys_set_every_key_to_the_seed_and_name_the_sweep_dir():
    sweep = sweeps.resolve_sweep("trec_cnn", None, [], [], 3, [], "train.seed,data.seed")
    points = sweeps.expand(sweep)
    assert [p.overrides for p in points] == [[f"train.seed={k}", f"data.seed={k}"] for k in range(3)]
    cfgs = [cfg for _, cfg in sweeps.plan("trec_cnn", sweep)]
    assert [(c.train.seed, c.data.seed) for c in cfgs] == [(0, 0), (1, 1), (2, 2)]
    default = sweeps.resolve_sweep("trec_cnn", None, [], [], 3, [])
    assert default.seed_keys == ("train.seed",)
    assert [c.data.seed for _, c in sweeps.plan("trec_cnn", default)] == [0] * 3
    assert sweeps.default_sweep_dir("trec_cnn", None, sweep) != sweeps.default_sweep_dir("trec_cnn", None, default)


@pytest.mark.parametrize("keys, match", [(",", "one or more distinct keys"),
                                         ("train.seed,train.seed", "one or more distinct keys"),
                                         ("train.seed,model.hidden", "takes seeds .* not model.hidden"),
                                         ("train.seed,data.seed", "both an axis and a seed key")])
def test_bad_seed_keys_are_refused(keys, match):
    with pytest.raises(C.ConfigError, match=match):
        sweeps.resolve_sweep("xor:tiny", None, ["data.seed=4,8"], [], 2, [], keys)


def test_an_unknown_seed_key_fails_before_anything_runs(tmp_path):
    with pytest.raises(C.ConfigError, match="unknown config key 'data.shuffle_seed'"):
        commands.sweep("xor:tiny", [], seeds=2, seed_keys="train.seed,data.shuffle_seed", sweep_dir=str(tmp_path / "s"))
    assert not (tmp_path / "s").exists()


def test_a_data_seed_sweep_records_its_keys_and_refuses_another_seeding_in_its_dir(data_dir, tmp_path):
    args = dict(seeds=2, sweep_dir=str(tmp_path / "s"), data_dir=str(data_dir), progress=False)
    commands.sweep("xor:tiny", ["train.steps=5"], seed_keys="train.seed,data.seed", **args)
    sweep_dir = tmp_path / "s"
    assert json.loads((sweep_dir / "sweep.json").read_text())["seed_keys"] == ["train.seed", "data.seed"]
    for k in range(2):
        saved = json.loads((sweep_dir / f"seed={k}" / "config.json").read_text())
        assert saved["train"]["seed"] == saved["data"]["seed"] == k
    assert "each sets `train.seed`, `data.seed`" in (sweep_dir / "report.md").read_text()
    with pytest.raises(C.ConfigError, match="holds a different sweep"):
        commands.sweep("xor:tiny", ["train.steps=5"], **args)


def test_a_sweep_dir_written_before_seed_keys_still_resumes(data_dir, tmp_path, capsys):
    args = dict(seeds=2, sweep_dir=str(tmp_path / "s"), data_dir=str(data_dir), progress=False)
    commands.sweep("xor:tiny", ["train.steps=5"], **args)
    path = tmp_path / "s" / "sweep.json"
    old = json.loads(path.read_text())
    del old["seed_keys"]
    path.write_text(json.dumps(old))
    capsys.readouterr()
    commands.sweep("xor:tiny", ["train.steps=5"], **args)
    assert capsys.readouterr().out.count("finished, skipped") == 2
