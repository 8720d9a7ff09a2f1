"""Dropout theory made checkable: the ensemble of thinned networks, and the experiments.

`ensemble` functions run the ``2**n`` thinned networks of a dropout layer of a
`fastdrop.nn.Sequential` (`enumerate_masks`, `subnetwork_predictions`), combine them
(`nwgm`, `arithmetic_mean`, `geometric_mean`), compare weight scaling with both means and
MC dropout (`compare`), and run MC dropout with uncertainty summaries (`mc_predict`).
`experiments` holds one function per experiment of ``fastdrop experiment``.
``import fastdrop`` does not load this package.
"""
from .ensemble import (MAX_ENUMERATED_UNITS, Comparison, MCResult, PairStats, arithmetic_mean,
                       compare, deterministic_predictions, dropout_layer_indices,
                       enumerate_masks, exact_means, geometric_mean, marginalized_linear_loss,
                       mc_predict, nwgm, subnetwork_predictions)
from .experiments import (EXPERIMENTS, Experiment, ExperimentResult, Spread, Table, combine,
                          experiment_bagging, experiment_coadaptation, experiment_datasize,
                          experiment_mc, experiment_nwgm, experiment_rate, experiment_scaling,
                          plot_result, run_experiment)

__all__ = [
    # ensemble
    "enumerate_masks", "subnetwork_predictions", "nwgm", "arithmetic_mean", "geometric_mean",
    "exact_means", "deterministic_predictions", "dropout_layer_indices", "compare",
    "Comparison", "PairStats", "mc_predict", "MCResult", "marginalized_linear_loss",
    "MAX_ENUMERATED_UNITS",
    # experiments
    "EXPERIMENTS", "Experiment", "run_experiment", "plot_result", "combine", "ExperimentResult",
    "Table", "Spread", "experiment_scaling", "experiment_nwgm", "experiment_bagging", "experiment_coadaptation", "experiment_rate",
    "experiment_datasize", "experiment_mc",
]
