"""The throughput benchmark's orchestration: time budget, point order, incremental JSON.

The measurements themselves run in subprocesses and take minutes on a CPU; these tests
replace the worker launcher and the clock, so they check the decisions, not the timings.
"""

import argparse
import json

import pytest

from benchmarks import disentanglement
from benchmarks import kann
from benchmarks import recurrent
from benchmarks import throughput


class FakeClock:

  def __init__(self):
    self.now = 1000.0

  def __call__(self):
    return self.now


@pytest.fixture
def workers(monkeypatch):
  """Replaces `run_worker`: each call takes `seconds` of the fake clock, returns None if it
  `fails`, and is logged."""
  clock, calls = FakeClock(), []

  def fake_run_worker(kind, spec, env_extra=None, timeout=None):
    calls.append({"kind": kind, "timeout": timeout})
    clock.now += fake_run_worker.seconds
    return None if fake_run_worker.fails else {"kind": kind}

  fake_run_worker.seconds = 30.0
  fake_run_worker.fails = False  # True: like a worker killed at its timeout
  monkeypatch.setattr(throughput, "run_worker", fake_run_worker)
  return clock, calls, fake_run_worker


def test_budget_starts_a_measurement_only_while_the_longest_so_far_still_fits(workers):
  clock, calls, worker = workers
  budget = throughput.TimeBudget(100.0, clock=clock)
  results = [budget.run(f"point {i}", "jax", {}) for i in range(4)]
  # 0 s, 30 s, 60 s used: 100, 70, 40 s left >= 30 s; then 10 s left < 30 s: skipped
  assert results == [{"kind": "jax"}] * 3 + [None]
  assert [c["timeout"] for c in calls] == [100.0, 70.0, 40.0]
  assert budget.skipped == ["point 3"]
  # a shorter measurement later does not shrink the forecast
  worker.seconds = 1.0
  assert budget.run("point 4", "eig", {}) is None and budget.skipped[-1] == "point 4"


def test_budget_skips_everything_once_the_time_is_spent(workers):
  clock, calls, _ = workers
  budget = throughput.TimeBudget(10.0, clock=clock)
  clock.now += 10.0
  assert budget.run("late", "jax", {}) is None and not calls
  assert budget.left() == 0.0


def test_budget_names_a_measurement_it_had_to_stop(workers):
  clock, calls, worker = workers
  budget = throughput.TimeBudget(20.0, clock=clock)
  worker.seconds, worker.fails = 25.0, True  # killed at its 20 s timeout
  assert budget.run("slow point", "jax", {}) is None
  assert calls[0]["timeout"] == 20.0 and budget.skipped == ["slow point (stopped when the "
                                                            "budget ran out)"]


def test_no_budget_never_skips_and_sets_no_timeout(workers):
  clock, calls, worker = workers
  budget = throughput.TimeBudget(0.0, clock=clock)
  worker.seconds = 1e6
  assert all(budget.run(f"p{i}", "jax", {}) for i in range(3))
  assert [c["timeout"] for c in calls] == [None] * 3 and budget.left() is None


def test_full_sweep_measures_the_reference_point_first():
  args = argparse.Namespace(batch=None, devices=None, precision=None, sweep_resolved="full")
  points = throughput._points(args, {"device_count": 4})
  assert points[0] == throughput.REFERENCE
  combos = {(p["batch"], p["devices"], p["precision"]) for p in points}
  expected = {(b, d, p) for b in throughput.FULL_BATCHES for d in (1, 2, 4)
              for p in throughput.PRECISIONS}
  assert combos == expected and len(points) == len(expected)


def test_json_is_written_whole_and_can_be_rewritten(tmp_path):
  path = tmp_path / "records.json"
  throughput._write_json(str(path), [{"batch": 8}])
  throughput._write_json(str(path), [{"batch": 8}, {"batch": 16, "path": tmp_path}])
  assert json.loads(path.read_text()) == [{"batch": 8}, {"batch": 16, "path": str(tmp_path)}]
  throughput._write_json(None, [{"batch": 8}])  # no --json: nothing written


def _recurrent_record(dataset, cell, seed, acc, timed):
  record = {"dataset": dataset, "cell": cell, "seed": seed, "accuracy": {"test": acc},
            "curvature": {"parameters": 10, "lambda_max": 2.0 + seed, "trace": 5.0},
            "noise": [{"sigma": 0.0, "accuracy": acc}, {"sigma": 0.1, "accuracy": acc - 0.1}]}
  if timed:
    record["step_time"] = {"step_s_median": 0.004}
  return record


def test_recurrent_benchmark_summarises_over_seeds():
  records = [_recurrent_record("digits", "lipschitz", s, a, s == 0)
             for s, a in enumerate((0.9, 0.8))]
  records.append(_recurrent_record("digits", "lstm", 0, 0.7, True))
  rows = recurrent.summarise(records)
  assert [(r["cell"], r["seeds"]) for r in rows] == [("lipschitz", 2), ("lstm", 1)]
  assert rows[0]["test_accuracy"] == pytest.approx({"mean": 0.85, "std": 0.05})
  assert rows[0]["lambda_max"]["mean"] == pytest.approx(2.5)
  assert rows[0]["noise"][1]["mean"] == pytest.approx(0.75)
  assert rows[0]["step_ms"] == pytest.approx(4.0)
  table = recurrent.markdown(rows)
  assert "| digits | lipschitz | 85.00% ± 5.00 | 10 | 4.00 |" in table
  assert "acc @ σ=0.1" in table


def test_kann_benchmark_table():
  ranking = {"roc_auc": 0.9, "precision_at_k": 0.7}
  records = [{"cell": "gru", "test_accuracy": 1.0, "one_step": 0.4, "agreement": 0.97,
              "pair_innovation": ranking, "pair_magnitude": {"roc_auc": 0.5},
              "best_mode_innovation_auc": 0.95} for _ in range(3)]
  table = kann.markdown(records)
  assert "| gru | 3 | 1.000 ± 0.000 | 0.400 ± 0.000 | 0.970 ± 0.000 | 0.900 ± 0.000 |" in table


def test_disentanglement_benchmark_numbers_and_table():
  metrics = {"acc": 0.5, "IS": 2.0, "H_yx": 0.1, "H_y": 1.7}
  record = {"heads": {"static": ["skin", "hair"]},
            "reconstruction_accuracy": {"action": 1.0},
            "per_seed": [{"fix_motion": {"action": metrics},
                          "fix_static": {"skin": {"acc": 0.8}, "hair": {"acc": 0.6}},
                          "two_factor_swap": {"joint": 0.25}}]}
  row = disentanglement.numbers(record)
  assert row["static_acc"] == pytest.approx(0.7) and row["swap_joint"] == 0.25
  table = disentanglement.markdown({"SKD": [row, {**row, "action_acc": 0.7}]}, {"SKD": 0.15})
  assert "| SKD | 2 | 60.00 ± 14.14 |" in table and "| 0.150 |" in table
  assert set(disentanglement.MODELS) == {"SKD", "SPYL", "SPYL (w_contrastive=0)"}
  assert disentanglement.config("SPYL", 200, 1).warmup_steps == 10


def test_disentanglement_benchmark_sprites_rows_share_one_frame_size():
  rows = {name: disentanglement.config(name, 300, 2, "sprites", "/data/tfds")
          for name in disentanglement.MODELS}
  assert {cfg.name for cfg in rows.values()} == {"sprites_cpu", "spyl_sprites_cpu"}
  for cfg in rows.values():
    assert (cfg.dataset, cfg.image_size, cfg.steps, cfg.seed, cfg.data_dir) == (
        "sprites", 32, 300, 2, "/data/tfds")
  assert rows["SPYL (w_contrastive=0)"].w_contrastive == 0.0 and rows["SPYL"].w_contrastive == 1
  with pytest.raises(SystemExit):
    disentanglement.main(["--models", "SKD,SPYLL", "--quick"])
