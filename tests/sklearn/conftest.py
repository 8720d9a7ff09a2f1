"""The estimators' tests train many tiny networks: their products are far too small to
gain from BLAS threads, and on a busy machine the threads' hand-offs cost more than the
products (100x on two shared cores), so the BLAS runs on one thread here.  fastdrop's
own kernel threads are left as they are (tests that compare thread counts set them)."""
import pytest

threadpoolctl = pytest.importorskip("threadpoolctl")


@pytest.fixture(autouse=True)
def one_blas_thread():
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        yield
