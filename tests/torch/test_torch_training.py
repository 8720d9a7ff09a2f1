"""A torch MLP with fastdrop.torch.Dropout learns the bundled digits."""
import pytest

torch = pytest.importorskip("torch")

import fastdrop.torch as fdt  # noqa: E402
from fastdrop.datasets import load_mnist5k  # noqa: E402


@pytest.fixture
def one_torch_thread():
    # torch's spinning OpenMP threads slow down tenfold on a shared, busy machine
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_mlp_with_fastdrop_dropout_learns_the_digits(one_torch_thread):
    torch.manual_seed(0)
    X_train, y_train, X_test, y_test = (torch.from_numpy(a) for a in load_mnist5k())
    model = torch.nn.Sequential(
        fdt.Dropout(0.2), torch.nn.Linear(784, 128), torch.nn.ReLU(),
        fdt.Dropout(0.5), torch.nn.Linear(128, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(3):
        for batch in torch.randperm(len(X_train)).split(100):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(X_train[batch]), y_train[batch])
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(X_test).argmax(dim=1) == y_test).float().mean().item()
    assert accuracy > 0.85
