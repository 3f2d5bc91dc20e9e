"""Evaluation: one evaluator per model behind one interface (`Evaluator`), and the pieces of
the disentanglement protocol they are made of (docs/evaluation.md).

* `get(model)` -> the model's evaluator: `skd` (judge-based sampling, swaps, multifactor,
  probes), `judge` (its accuracy on real data), `kae` (long rollouts). Each returns an
  `Evaluation` and writes nothing; `koopjax.report` writes it.
* `koopjax.eval.latents`: SKD latents in batches, the judge on their decodings, C's analysis;
* `koopjax.eval.metrics`: Acc, IS, H(y|x), H(y) of the judge's softmax;
* `koopjax.eval.sampling`: fix the dynamics and sample the static part, or the reverse;
* `koopjax.eval.swaps`: two-factor and multifactor swaps, modes attributed to factors;
* `koopjax.eval.probes`: linear probes of the eigen-coordinates.
* `spyl`: SPYL judged by the same protocol as SKD (sampling from its priors, swaps of s);
* `rnn` (a sequence classifier: accuracy, noise robustness, loss curvature, spectra) and
  `rnn_ae` (a sequence autoencoder as an anomaly detector);
* `koopjax.eval.kann`: the Koopman analysis of a trained recurrent network (``koopjax
  analyse``); `curvature`: Hessian λ_max and trace of a loss; `batches`: whole splits in
  batches.
"""

from koopjax.eval import batches
from koopjax.eval import curvature
from koopjax.eval import judge
from koopjax.eval import kae
from koopjax.eval import kann
from koopjax.eval import latents
from koopjax.eval import metrics
from koopjax.eval import probes
from koopjax.eval import rnn
from koopjax.eval import rnn_ae
from koopjax.eval import sampling
from koopjax.eval import skd
from koopjax.eval import spyl
from koopjax.eval import swaps
from koopjax.eval.evaluation import Evaluation
from koopjax.eval.evaluation import EvaluationError
from koopjax.eval.evaluation import Evaluator
from koopjax.eval.evaluation import Figure
from koopjax.eval.judge import JudgeTooWeakError
from koopjax.eval.latents import make_latent_judge
from koopjax.eval.latents import sample_sequences
from koopjax.eval.metrics import balanced_subset
from koopjax.eval.metrics import conditional_entropy
from koopjax.eval.metrics import inception_score
from koopjax.eval.metrics import judge_metrics
from koopjax.eval.metrics import marginal_entropy
from koopjax.eval.probes import mode_probes
from koopjax.eval.probes import ridge_probe_accuracy
from koopjax.eval.sampling import sample_latents
from koopjax.eval.skd import EvalOptions
from koopjax.eval.swaps import attribute_modes
from koopjax.eval.swaps import factor_swap_table
from koopjax.eval.swaps import incremental_swaps
from koopjax.eval.swaps import mode_components
from koopjax.eval.swaps import two_factor_swap_accuracy

EVALUATORS: dict[str, Evaluator] = {"skd": skd, "judge": judge, "kae": kae, "rnn": rnn,
                                    "rnn_ae": rnn_ae, "spyl": spyl}


def get(model: str) -> Evaluator:
  """The evaluator of a model (by the model's registered name)."""
  if model not in EVALUATORS:
    raise EvaluationError(f"model {model!r} has no evaluation; evaluators exist for "
                          f"{', '.join(sorted(EVALUATORS))}.")
  return EVALUATORS[model]


__all__ = (
    "EVALUATORS", "EvalOptions", "Evaluation", "EvaluationError", "Evaluator", "Figure",
    "JudgeTooWeakError", "attribute_modes", "balanced_subset", "batches", "conditional_entropy",
    "curvature", "kann", "rnn", "rnn_ae",
    "factor_swap_table", "get", "incremental_swaps", "inception_score", "judge", "judge_metrics",
    "kae", "latents", "make_latent_judge", "marginal_entropy", "metrics", "mode_components",
    "mode_probes",
    "probes", "ridge_probe_accuracy", "sample_latents", "sample_sequences", "sampling", "skd",
    "spyl", "swaps", "two_factor_swap_accuracy",
)
