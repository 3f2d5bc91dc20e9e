"""Tests of the reports: the writer, the figures it draws, the markdown tables."""

import json
import types

import jax
import jax.numpy as jnp
import numpy as np

import koopjax as kj
from koopjax import report
from koopjax import train
from koopjax.eval import Evaluation
from koopjax.eval import Figure
from koopjax.eval import skd as skd_eval
from koopjax.models import skd


def test_skd_report_fits_c_on_every_test_sequence(tmp_path, monkeypatch, tiny, tiny_judge,
                                                  labelled_videos):
  """The training report's figures, its C fitted on all test latents (as `evaluate`)."""
  test = labelled_videos(tiny_judge, 20, seed=1)
  monkeypatch.setattr(skd, "load_data", lambda cfg, split: test)
  variables = jax.jit(skd.init, static_argnums=1)(jax.random.key(0), tiny)
  state = types.SimpleNamespace(params=variables["params"], step=np.int32(7),
                                model_state={k: v for k, v in variables.items() if k != "params"})
  history = [{"step": s, "loss": 1.0 / s, "rec": 0.5 / s} for s in range(1, 8)]
  written = report.write_run_report(train.RunResult(state, tiny, tmp_path, history))
  out = tmp_path / "report"
  assert written.documents == {"summary.json": written.record}
  for name in ("loss_curves.png", "reconstructions.png", "swap_grid.png", "eigenvalues.png"):
    assert (out / name).stat().st_size > 0, name
  z = skd.encode(variables, jnp.asarray(test["video"]), tiny)  # order does not change C
  eigenvalues = np.asarray(kj.eig(kj.fit_koopman(z)).eigenvalues)
  summary = json.loads((out / "summary.json").read_text())
  assert summary["step"] == 7 and summary["final_loss"] == history[-1]["loss"]
  assert summary["fitted_on"] == 20
  written = np.array([complex(re, im) for re, im in summary["eigenvalues"]])
  np.testing.assert_allclose(np.sort_complex(written), np.sort_complex(eigenvalues), atol=1e-4)
  assert summary["static_modes"] == int(kj.static_mask(eigenvalues, tiny.n_static,
                                                       tiny.static_mode).sum())
  subset = skd_eval.run_summary(train.RunResult(state, tiny, tmp_path, history), 8)
  assert subset.record["fitted_on"] == 8 and len(subset.figures) == 4


def test_write_evaluation_writes_documents_markdown_and_every_figure(tmp_path):
  history = [{"step": s, "loss": 1.0 / s} for s in range(1, 5)]
  video = np.zeros((8, 16, 16, 3), np.uint8)
  figures = (Figure("curves.png", "loss_curves", {"history": history, "keys": ["loss"]}),
             Figure("grid.png", "video_grid", {"rows": [video, video], "labels": ["a", "b"]}),
             Figure("eig.png", "eigenvalue_plot", {"eigenvalues": np.array([1.0, 0.5j, -0.5j]),
                                                   "static": np.array([True, False, False])}))
  record = {"x": np.float32(1.5), "values": np.arange(3)}
  out = report.write_evaluation(Evaluation("kae", {}, {"a.json": record}, figures), tmp_path / "o")
  assert json.loads((out / "a.json").read_text()) == {"x": 1.5, "values": [0, 1, 2]}
  assert sorted(p.name for p in out.iterdir()) == ["a.json", "curves.png", "eig.png", "grid.png"]
  assert all((out / f.filename).stat().st_size > 0 for f in figures)
