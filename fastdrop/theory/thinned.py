"""The tutorial's picture of dropout: one network, a new thinned network at every training step.

`thinned_steps` trains a small MLP of `fastdrop.nn` for a few SGD steps on one example; at
each step every hidden dropout layer draws its mask from ``(layer seed, stream = step)``,
as every `fastdrop.nn` layer does, and `fastdrop.sample_mask` gives the same mask back
for the figure.  The steps record the weights they start from, so the figure draws the
shared weights as they are, and a check confirms that a step leaves every connection of
a dropped unit unchanged (plain SGD: a dropped unit gets no gradient).  `plot_thinned`
draws the steps side by side, the dropped units ghosted and their connections hidden,
and beside them the deterministic network used at test time.
"""
from dataclasses import dataclass, field

import numpy as np

from ..api import sample_mask
from ..nn import SGD, Dense, Dropout, build_mlp, fit


@dataclass
class ThinnedSteps:
    sizes: tuple
    keep_prob: float
    seed: int
    weights: list = field(default_factory=list)   # per step: the affine layers' W, before the step
    kept: list = field(default_factory=list)      # per step: one bool array per layer (True = kept)
    streams: list = field(default_factory=list)   # per step: the stream its masks came from
    layer_seeds: list = field(default_factory=list)
    untouched: list = field(default_factory=list)  # per step: dropped units' connections unchanged
    final_weights: list = field(default_factory=list)

    def kept_counts(self):
        """Per step: the kept units of each hidden layer, as 'k of n'."""
        return [[f"{int(k.sum())} of {k.size}" for k in step[1:-1]] for step in self.kept]


def thinned_steps(*, sizes=(4, 6, 6, 3), keep_prob=0.5, steps=3, seed=0, lr=0.5):
    """Train a ``sizes`` MLP with hidden dropout (keep `keep_prob`) for `steps` SGD steps on
    one random example and record, per step, its weights and the units each mask kept."""
    net = build_mlp(sizes, hidden_rate=1.0 - keep_prob, fused=False, seed=seed, dtype=np.float64)
    dense = [layer for layer in net.layers if isinstance(layer, Dense)]
    drops = [layer for layer in net.layers if isinstance(layer, Dropout)]
    rng = np.random.default_rng([seed, 3])
    X = rng.standard_normal((1, sizes[0]))
    y = np.array([int(rng.integers(sizes[-1]))])
    out = ThinnedSteps(tuple(sizes), keep_prob, seed, layer_seeds=[d.seed for d in drops])
    optimizer = SGD(lr=lr)  # no momentum: a step moves only the weights its gradient reaches
    for _ in range(steps):
        stream = drops[0].step
        masks = [sample_mask((1, width), keep_prob=keep_prob, seed=d.seed, stream=stream).to_bool()[0]
                 for d, width in zip(drops, sizes[1:-1])]
        before = [layer.W.copy() for layer in dense]
        fit(net, X, y, epochs=1, batch_size=1, optimizer=optimizer, seed=seed, progress=False)
        after = [layer.W for layer in dense]
        untouched = True
        for h, keep in enumerate(masks):  # hidden layer h: into it is W[h], out of it W[h + 1]
            untouched &= bool(np.array_equal(before[h][:, ~keep], after[h][:, ~keep]))
            untouched &= bool(np.array_equal(before[h + 1][~keep], after[h + 1][~keep]))
        out.weights.append(before)
        out.kept.append([np.ones(sizes[0], bool), *masks, np.ones(sizes[-1], bool)])
        out.streams.append(stream)
        out.untouched.append(untouched)
    out.final_weights = [layer.W.copy() for layer in dense]
    return out


_KEPT = {"input": "0.55", "hidden": "tab:blue", "output": "tab:green"}
_POSITIVE, _NEGATIVE = "tab:orange", "tab:purple"


def _draw_net(ax, sizes, weights, kept, *, scale_out_of_hidden=1.0, max_abs, title):
    """One network on `ax`: units as circles, connections as lines of width ~ |w| coloured
    by sign; a unit not kept is ghosted and its connections are not drawn."""
    from matplotlib.collections import LineCollection

    ys = [np.linspace(-(n - 1) / 2, (n - 1) / 2, n) for n in sizes]
    segments, colours, widths = [], [], []
    for layer, W in enumerate(weights):
        factor = scale_out_of_hidden if layer > 0 else 1.0
        for i in np.flatnonzero(kept[layer]):
            for j in np.flatnonzero(kept[layer + 1]):
                w = factor * W[i, j]
                segments.append([(layer, ys[layer][i]), (layer + 1, ys[layer + 1][j])])
                colours.append(_POSITIVE if w > 0 else _NEGATIVE)
                widths.append(0.3 + 3.2 * abs(w) / max_abs)
    ax.add_collection(LineCollection(segments, colors=colours, linewidths=widths, alpha=0.75,
                                     zorder=1, capstyle="round"))
    for on in (True, False):
        xs, yv, colour = [], [], []
        for layer, n in enumerate(sizes):
            kind = "input" if layer == 0 else "output" if layer == len(sizes) - 1 else "hidden"
            for i in range(n):
                if bool(kept[layer][i]) == on:
                    xs.append(layer), yv.append(ys[layer][i]), colour.append(_KEPT[kind])
        if xs:
            ax.scatter(xs, yv, s=230, zorder=2, c=colour, alpha=1.0 if on else 0.2,
                       edgecolors="black", linewidths=1.0 if on else 1.3,
                       linestyle="-" if on else "--")
    ax.set_title(title, fontsize=10)
    ax.set_xlim(-0.3, len(sizes) - 0.7)
    ax.set_ylim(-max(sizes) / 2 - 0.6, max(sizes) / 2 + 0.2)
    ax.axis("off")


def plot_thinned(data, path):
    """The thinned network of every step, then the test-time network, in one figure."""
    from .experiments import _pyplot

    plt = _pyplot()
    from matplotlib.lines import Line2D

    p = data.keep_prob
    steps = len(data.weights)
    # With inverted dropout a kept unit's output reaches the next layer as W/p in training
    # and as W at test time: the test-time net is the training one with its outgoing
    # weights scaled by p, as in the tutorial's classical presentation.
    train_weights = [[W if layer == 0 else W / p for layer, W in enumerate(step)]
                     for step in data.weights]
    test_weights = [W if layer == 0 else W / p for layer, W in enumerate(data.final_weights)]
    max_abs = max(float(np.max(np.abs(W))) for step in train_weights for W in step)
    fig, axes = plt.subplots(1, steps + 1, figsize=(3.1 * (steps + 1), 4.1))
    fig.subplots_adjust(left=0.01, right=0.99, top=0.8, bottom=0.1, wspace=0.12)
    for t, ax in enumerate(axes[:steps]):
        counts = ", ".join(data.kept_counts()[t])
        _draw_net(ax, data.sizes, train_weights[t], data.kept[t], max_abs=max_abs,
                  title=f"training step {t + 1} (stream {data.streams[t]})\nhidden units kept: {counts}")
    names = ["input"] + ["hidden"] * (len(data.sizes) - 2) + ["output"]
    for layer, name in enumerate(names):
        axes[0].text(layer, -max(data.sizes) / 2 - 0.1, name, ha="center", va="top", fontsize=8,
                     color="0.35")
    _draw_net(axes[-1], data.sizes, test_weights, [np.ones(n, bool) for n in data.sizes],
              scale_out_of_hidden=p, max_abs=max_abs,
              title=f"test time: every unit,\nweights out of hidden units × p = {p:g}")
    fig.add_artist(Line2D([0.755, 0.755], [0.1, 0.85], color="0.6", linewidth=1, linestyle=":"))
    handles = [Line2D([], [], color=_POSITIVE, linewidth=2, label="weight > 0"),
               Line2D([], [], color=_NEGATIVE, linewidth=2, label="weight < 0"),
               Line2D([], [], marker="o", color="white", markerfacecolor="tab:blue",
                      markeredgecolor="black", markersize=10, linestyle="none", label="kept unit"),
               Line2D([], [], marker="o", color="white", markerfacecolor=(0.12, 0.47, 0.71, 0.2),
                      markeredgecolor="black", markersize=10, linestyle="none",
                      label="unit dropped this step (ghosted, its connections hidden)")]
    fig.legend(handles=handles, loc="lower center", ncol=4, frameon=False, fontsize=9)
    fig.suptitle(f"one {'-'.join(map(str, data.sizes))} network: the same weights at every step "
                 f"(line width ~ |weight|), a new mask from (layer seed, stream = step) at each",
                 fontsize=10.5)
    fig.savefig(path, dpi=110)
    plt.close(fig)
