"""koopjax: Koopman autoencoders in JAX.

The public API: pure, jit/vmap/grad-compatible functions of arrays for fitting and
analysing Koopman operators (also of a trained network's hidden states), SKD's spectral loss,
eigenvalue initialisation and penalties, the Lipschitz RNN's spectrally controlled matrices,
Hessian curvature estimates, and the variational and contrastive terms of SPYL. Models,
training, data and evaluation live in subpackages.
"""

from koopjax._src.analysis import KoopmanAnalysis
from koopjax._src.analysis import continuous_eigenvalues
from koopjax._src.analysis import koopman_analysis
from koopjax._src.analysis import mode_amplitudes
from koopjax._src.analysis import modal_states
from koopjax._src.analysis import projection_basis
from koopjax._src.contrastive import farthest_by_kl
from koopjax._src.contrastive import gaussian_kl
from koopjax._src.contrastive import info_nce
from koopjax._src.contrastive import mws_mutual_information
from koopjax._src.contrastive import pairwise_gaussian_kl
from koopjax._src.eigvals import EIG_BACKENDS
from koopjax._src.eigvals import eigvals
from koopjax._src.finite import NonFiniteInputError
from koopjax._src.finite import check_finite
from koopjax._src.gradients import clip_gradient_norm
from koopjax._src.hessian import TraceEstimate
from koopjax._src.hessian import hessian_top_eigenvalue
from koopjax._src.hessian import hessian_vector_product
from koopjax._src.hessian import hutchinson_trace
from koopjax._src.invariance import dynamic_part
from koopjax._src.invariance import motion_invariance_loss
from koopjax._src.invariance import temporal_deviations
from koopjax._src.koopman import Eigendecomposition
from koopjax._src.koopman import eig
from koopjax._src.koopman import fit_koopman
from koopjax._src.koopman import koopman_gram
from koopjax._src.koopman import modes_to_mask
from koopjax._src.koopman import pair_mask
from koopjax._src.koopman import predict_one_step
from koopjax._src.koopman import rollout
from koopjax._src.koopman import solve_koopman
from koopjax._src.koopman import swap
from koopjax._src.lipschitz import lipschitz_matrix
from koopjax._src.lipschitz import max_real_eigenvalue
from koopjax._src.spectral import DYNAMIC_MODES
from koopjax._src.spectral import EIGENINIT_DISTRIBUTIONS
from koopjax._src.spectral import EIGENLOSS_KINDS
from koopjax._src.spectral import STATIC_MODES
from koopjax._src.spectral import eigeninit
from koopjax._src.spectral import eigenloss
from koopjax._src.spectral import near_one_mask
from koopjax._src.spectral import skd_spectral_loss
from koopjax._src.spectral import spectral_penalty
from koopjax._src.spectral import static_mask

__version__ = "0.1.0"

__all__ = (
    "DYNAMIC_MODES",
    "EIG_BACKENDS",
    "EIGENINIT_DISTRIBUTIONS",
    "EIGENLOSS_KINDS",
    "Eigendecomposition",
    "KoopmanAnalysis",
    "NonFiniteInputError",
    "TraceEstimate",
    "check_finite",
    "clip_gradient_norm",
    "continuous_eigenvalues",
    "dynamic_part",
    "STATIC_MODES",
    "eig",
    "eigeninit",
    "eigenloss",
    "eigvals",
    "farthest_by_kl",
    "fit_koopman",
    "gaussian_kl",
    "hessian_top_eigenvalue",
    "hessian_vector_product",
    "hutchinson_trace",
    "info_nce",
    "koopman_analysis",
    "koopman_gram",
    "lipschitz_matrix",
    "max_real_eigenvalue",
    "modal_states",
    "mode_amplitudes",
    "modes_to_mask",
    "motion_invariance_loss",
    "mws_mutual_information",
    "near_one_mask",
    "pair_mask",
    "pairwise_gaussian_kl",
    "predict_one_step",
    "projection_basis",
    "rollout",
    "skd_spectral_loss",
    "solve_koopman",
    "spectral_penalty",
    "static_mask",
    "swap",
    "temporal_deviations",
)
