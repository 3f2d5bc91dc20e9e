"""Evaluation of disentanglement with a judge classifier (skd-spec.md 1.5-1.6).

* `judge_metrics` and the pieces it is made of (`koopjax.eval.metrics`): Acc, IS, H(y|x),
  H(y) of the judge's softmax, on a class-balanced subset;
* the sampling and swap protocol for SKD (`koopjax.eval.protocol`): fix the dynamics and
  sample the static part (or the reverse), two-factor swaps, `evaluate_skd`;
* multifactor swaps (`koopjax.eval.multifactor`): modes attributed to factors, per-factor
  swap accuracy, incremental swaps;
* linear probes of the eigen-coordinates (`koopjax.eval.probes`): which modes carry which
  factor, without the decoder.

The judge itself is a model, `koopjax.models.judge`, trained by the one trainer.
"""

from koopjax.eval import metrics
from koopjax.eval import multifactor
from koopjax.eval import probes
from koopjax.eval import protocol
from koopjax.eval.metrics import balanced_subset
from koopjax.eval.metrics import conditional_entropy
from koopjax.eval.metrics import inception_score
from koopjax.eval.metrics import judge_metrics
from koopjax.eval.metrics import marginal_entropy
from koopjax.eval.multifactor import attribute_modes
from koopjax.eval.multifactor import factor_swap_table
from koopjax.eval.multifactor import incremental_swaps
from koopjax.eval.multifactor import mode_components
from koopjax.eval.probes import mode_probes
from koopjax.eval.probes import ridge_probe_accuracy
from koopjax.eval.protocol import EvalOptions
from koopjax.eval.protocol import EvaluationError
from koopjax.eval.protocol import JudgeTooWeakError
from koopjax.eval.protocol import evaluate_skd
from koopjax.eval.protocol import make_latent_judge
from koopjax.eval.protocol import sample_latents
from koopjax.eval.protocol import sample_sequences
from koopjax.eval.protocol import two_factor_swap_accuracy

__all__ = (
    "EvalOptions",
    "EvaluationError",
    "JudgeTooWeakError",
    "attribute_modes",
    "balanced_subset",
    "conditional_entropy",
    "evaluate_skd",
    "factor_swap_table",
    "incremental_swaps",
    "inception_score",
    "judge_metrics",
    "make_latent_judge",
    "marginal_entropy",
    "metrics",
    "mode_components",
    "mode_probes",
    "multifactor",
    "probes",
    "protocol",
    "ridge_probe_accuracy",
    "sample_latents",
    "sample_sequences",
    "two_factor_swap_accuracy",
)
