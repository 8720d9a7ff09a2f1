"""torch.compile, torch.export and torch.jit over fastdrop.torch: the operators are in the graphs."""
import pytest

torch = pytest.importorskip("torch")

import torch._dynamo.testing  # noqa: E402

import fastdrop.torch as fdt  # noqa: E402

STEPS = 12


def make_model(seed=7, threshold=None):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 12), torch.nn.ReLU(),
                               fdt.Dropout(0.5, seed=seed), torch.nn.Linear(12, 3))


def hidden(model, x):
    """The dropout layer's output and the model's output."""
    dropped = model[2](model[1](model[0](x)))
    return dropped, model[3](dropped)


def train(model, step, x, target):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    masks = []
    for _ in range(STEPS):
        optimizer.zero_grad()
        dropped, out = step(model, x)
        torch.nn.functional.mse_loss(out, target).backward()
        optimizer.step()
        masks.append(dropped != 0)
    return masks


@pytest.fixture(scope="module")
def compiled_run():
    """A 12-step training loop, eager and compiled (fullgraph) from the same weights."""
    x = torch.randn(5, 6, generator=torch.Generator().manual_seed(1))
    target = torch.randn(5, 3, generator=torch.Generator().manual_seed(2))
    backend = torch._dynamo.testing.AotEagerAndRecordGraphs()
    torch._dynamo.reset()
    compiled_step = torch.compile(hidden, backend=backend, fullgraph=True)
    eager_model, compiled_model = make_model(), make_model()
    eager = train(eager_model, hidden, x, target)
    compiled = train(compiled_model, compiled_step, x, target)
    return eager, compiled, backend, eager_model, compiled_model


def test_training_loop_compiles_once(compiled_run):
    _, _, backend, _, compiled_model = compiled_run
    assert len(backend.graphs) == 1  # no recompilation as the step advances
    assert compiled_model[2].step == STEPS


def test_compiled_graphs_call_the_fastdrop_operators(compiled_run):
    _, _, backend, _, _ = compiled_run
    forward = "\n".join(g.code for g in backend.fw_graphs)
    backward = "\n".join(g.code for g in backend.bw_graphs)
    assert "torch.ops.fastdrop.dropout.default" in forward
    assert "torch.ops.aten.bernoulli" not in forward and "native_dropout" not in forward
    assert "torch.ops.fastdrop.dropout_backward.default" in backward


def test_compiled_and_eager_masks_are_equal_at_every_step(compiled_run):
    eager, compiled, _, eager_model, compiled_model = compiled_run
    for step, (a, b) in enumerate(zip(eager, compiled)):
        assert torch.equal(a, b), step
    assert not torch.equal(eager[0], eager[1])
    for p, q in zip(eager_model.parameters(), compiled_model.parameters()):
        torch.testing.assert_close(p, q)
    assert torch.equal(eager_model[2].rng_state, compiled_model[2].rng_state)


def test_inductor_output_is_bit_equal_to_eager():
    torch._dynamo.reset()
    module = fdt.Dropout(0.3, seed=99)
    twin = fdt.Dropout(0.3, seed=99)
    compiled = torch.compile(module, backend="inductor", fullgraph=True)
    x = torch.randn(4, 33)
    for _ in range(2):
        assert torch.equal(compiled(x), twin(x))


def test_default_mode_compiles_once_with_the_operator():
    torch._dynamo.reset()
    backend = torch._dynamo.testing.AotEagerAndRecordGraphs()
    compiled = torch.compile(lambda t: fdt.dropout(t, 0.5), backend=backend, fullgraph=True)
    x = torch.ones(200)
    a, b = compiled(x), compiled(x)
    assert len(backend.graphs) == 1
    assert "torch.ops.fastdrop.dropout.default" in backend.fw_graphs[0].code
    assert not torch.equal(a, b)  # each call draws a new key and stream
    assert set(a.unique().tolist()) <= {0.0, 2.0}


def test_export_keeps_the_operator():
    model = make_model()
    twin = make_model()
    x = torch.randn(5, 6)
    exported = torch.export.export(model, (x,))
    assert "torch.ops.fastdrop.dropout.default" in str(exported.graph)
    runnable = exported.module()
    for _ in range(2):
        assert torch.equal(runnable(x), twin(x))


def test_jit_trace_records_the_operator_and_the_step():
    model = make_model()
    twin = make_model()
    x = torch.randn(5, 6)
    traced = torch.jit.trace(model, (x,), check_trace=False)
    twin(x)  # the trace ran one step
    assert "fastdrop::dropout" in str(traced.inlined_graph)
    outputs = [traced(x) for _ in range(3)]
    assert not torch.equal(outputs[0], outputs[1])  # no frozen mask
    for out in outputs:
        assert torch.equal(out, twin(x))


def test_jit_trace_without_seed_draws_per_call():
    traced = torch.jit.trace(fdt.Dropout(0.5), (torch.ones(100),), check_trace=False)
    assert not torch.equal(traced(torch.ones(100)), traced(torch.ones(100)))


def test_jit_trace_of_a_python_seed_is_refused():
    with pytest.raises(RuntimeError, match="frozen into the trace"):
        torch.jit.trace(lambda t: fdt.dropout(t, 0.5, seed=1, stream=3), (torch.ones(4),))


def test_jit_script_is_refused_naming_what_to_use():
    with pytest.raises(RuntimeError, match="torch.compile, torch.export or torch.jit.trace"):
        torch.jit.script(make_model())
