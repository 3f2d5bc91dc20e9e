"""Tests of the judge: its heads, loss and training through the one trainer, its evaluation."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from koopjax import configs
from koopjax import report
from koopjax import train
from koopjax.eval import judge as judge_eval
from koopjax.models import judge
from koopjax.models.video import to_frames


def test_judge_heads_loss_and_training_through_the_one_trainer(tmp_path, monkeypatch, tiny_judge,
                                                               labelled_videos):
  cfg = tiny_judge
  assert list(judge.factor_classes(cfg)) == ["action", "skin", "pants", "top", "hair",
                                             "background"]
  assert judge.batch_keys(cfg) == ("video", *judge.factor_classes(cfg))
  data = labelled_videos(cfg)
  variables = judge.init(jax.random.key(0), cfg)
  assert set(variables) == {"params"}
  probs = jax.jit(judge.probabilities, static_argnums=2)(
      variables, to_frames(jnp.asarray(data["video"][:4])), cfg)
  for name, classes in judge.factor_classes(cfg).items():
    assert probs[name].shape == (4, classes)
    np.testing.assert_allclose(np.sum(probs[name], axis=1), 1, rtol=1e-5)
  loss_fn = jax.jit(judge.loss_fn, static_argnums=4)
  loss, (metrics, state) = loss_fn(variables["params"], {}, data, None, cfg)
  assert np.isfinite(loss) and state == {} and "acc_action" in metrics and "ce_hair" in metrics
  with pytest.raises(ValueError, match="sequences of shape"):
    judge.logits(variables, jnp.zeros((1, 8, 16, 16, 3)), cfg)

  monkeypatch.setattr(judge, "load_data", lambda cfg, split: labelled_videos(cfg, 32, 1))
  result = train.run(cfg, tmp_path / "judge", progress=False)
  restored = train.restore(tmp_path / "judge")
  assert isinstance(restored.cfg, configs.JudgeConfig) and restored.cfg == cfg
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(result.state.params),
               jax.device_get(restored.state.params))
  accuracy = judge_eval.test_accuracy(restored)
  assert set(accuracy["accuracy"]) == set(judge.factor_classes(cfg))
  evaluation = judge_eval.run_summary(restored)
  assert evaluation.record == accuracy and evaluation.documents == {"accuracy.json": accuracy}
  written = report.write_evaluation(evaluation, tmp_path / "judge" / "report")
  assert json.loads((written / "accuracy.json").read_text()) == accuracy
  assert (written / "loss_curves.png").stat().st_size > 0
  # the batched prediction is the model's own softmax
  probs = judge_eval.predict(variables, data["video"][:5], cfg, batch_size=2)
  direct = judge.probabilities(variables, to_frames(jnp.asarray(data["video"][:5])), cfg)
  for name in probs:
    np.testing.assert_allclose(probs[name], direct[name], rtol=1e-5, atol=1e-6)
  assert judge_eval.weak_heads({"a": 0.995, "b": 0.98}) == ["b"]
