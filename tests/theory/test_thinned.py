"""The picture of thinned networks: its masks are fastdrop's own, its weights are shared."""
import numpy as np
import pytest

from fastdrop import sample_mask
from fastdrop.nn import Dropout, build_mlp
from fastdrop.theory import thinned


@pytest.mark.parametrize("seed", [0, 1, 17])
def test_each_step_draws_the_masks_of_its_stream(seed):
    data = thinned.thinned_steps(seed=seed, steps=3)
    assert data.streams == [0, 1, 2]
    net = build_mlp(data.sizes, hidden_rate=0.5, fused=False, seed=seed, dtype=np.float64)
    drops = [layer for layer in net.layers if isinstance(layer, Dropout)]
    assert data.layer_seeds == [d.seed for d in drops]
    for t, kept in enumerate(data.kept):
        assert kept[0].all() and kept[-1].all()  # input and output layers are never thinned
        for h, d in enumerate(drops):
            # what the layer itself drops at step t, from a forward of ones
            d.step = t
            used = d.forward(np.ones((1, data.sizes[h + 1])), training=True)[0] != 0
            np.testing.assert_array_equal(kept[h + 1], used)
            np.testing.assert_array_equal(
                kept[h + 1], sample_mask((1, data.sizes[h + 1]), keep_prob=0.5, seed=d.seed,
                                         stream=t).to_bool()[0])


def test_the_steps_share_one_set_of_weights_and_move_only_kept_connections():
    data = thinned.thinned_steps(seed=3, steps=3)
    assert all(data.untouched)
    moved_kept = 0
    snapshots = data.weights + [data.final_weights]
    for t, kept in enumerate(data.kept):
        for layer, (before, after) in enumerate(zip(snapshots[t], snapshots[t + 1])):
            live = np.outer(kept[layer], kept[layer + 1])
            np.testing.assert_array_equal(before[~live], after[~live])
            moved_kept += int(np.count_nonzero(before[live] != after[live]))
    assert moved_kept > 0  # the check above is not vacuous: kept connections did learn
    # new masks each step: the thinned networks are not all the same
    patterns = {tuple(np.concatenate(k[1:-1])) for k in data.kept}
    assert len(patterns) > 1
    assert [len(c) for c in data.kept_counts()] == [2, 2, 2]


def test_plot_is_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "thinned.png"
    thinned.plot_thinned(thinned.thinned_steps(seed=0, sizes=(3, 5, 2), steps=2), str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
