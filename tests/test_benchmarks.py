"""The throughput benchmark's orchestration: time budget, point order, incremental JSON.

The measurements themselves run in subprocesses and take minutes on a CPU; these tests
replace the worker launcher and the clock, so they check the decisions, not the timings.
"""

import argparse
import json

import pytest

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
