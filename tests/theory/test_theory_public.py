"""What `from fastdrop import theory` offers."""
import pytest

from fastdrop import theory

NAMES = ["compare", "mc_predict", "enumerate_masks", "subnetwork_predictions", "nwgm",
         "arithmetic_mean", "geometric_mean", "exact_means", "deterministic_predictions",
         "dropout_layer_indices", "marginalized_linear_loss", "Comparison", "MCResult",
         "run_experiment", "EXPERIMENTS", "ExperimentResult", "Spread", "combine",
         "experiment_scaling"]


@pytest.mark.parametrize("name", NAMES)
def test_name_is_at_the_top_of_fastdrop_theory(name):
    assert name in theory.__all__
    assert name in vars(theory)


def test_every_exported_name_exists_and_theory_holds_no_argparse():
    for name in theory.__all__:
        assert hasattr(theory, name), name
    from fastdrop.theory import report

    for module in (theory, theory.ensemble, theory.experiments, report):
        assert not hasattr(module, "add_arguments") and not hasattr(module, "run")
        assert "argparse" not in vars(module)
