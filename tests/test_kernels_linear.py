"""K.linear: few-row bf16 products on CPU through linear/cpu_gemv.c, F.linear for everything else."""
import pytest
import torch
import torch.nn.functional as F

from vlagent import kernels as K
from vlagent.kernels.linear import cpu as linear_cpu

needs_kernel = pytest.mark.skipif(linear_cpu.KERNEL.lib is None,
                                  reason=f"no few-row kernel: {linear_cpu.KERNEL.reason}")


def _randn(*shape, seed, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, generator=g) * scale).bfloat16()


def _reference(x, w, b=None):
    """fp32 products and sums of the bf16 inputs, one rounding to bf16."""
    y = x.float() @ w.float().T
    return (y if b is None else y + b.float()).bfloat16()


def _within_one_ulp(y, ref):
    # fp32 sums in another order round to a neighbouring bf16 value at most
    assert ((y.float() - ref.float()).abs() <= ref.float().abs() * 2**-7 + 1e-5).all()


@needs_kernel
@pytest.mark.parametrize("shape", [(1, 64), (3, 96), (8, 1024), (2, 1, 64), (1, 5, 32)])
@pytest.mark.parametrize("N", [1, 37, 260])
@pytest.mark.parametrize("with_bias", [False, True])
def test_few_rows_match_the_reference(shape, N, with_bias):
    K_ = shape[-1]
    x, w = _randn(*shape, seed=N), _randn(N, K_, seed=1, scale=0.1)
    b = _randn(N, seed=2) if with_bias else None
    y = linear_cpu.linear_few_rows(x, w, b)
    assert y is not None and y.shape == (*shape[:-1], N) and y.dtype == torch.bfloat16
    _within_one_ulp(y, _reference(x, w, b))
    assert torch.equal(K.linear(x, w, b), y)


@needs_kernel
def test_strided_rows_are_read_in_place():
    wide = _randn(4, 200, seed=3)
    x = wide[:, 8:136]  # rows 200 apart
    w = _randn(50, 128, seed=4, scale=0.1)
    _within_one_ulp(linear_cpu.linear_few_rows(x, w), _reference(x, w))


@pytest.mark.parametrize("case", ["nine rows", "K not a multiple of 32", "fp32", "transposed weight", "torch backend"])
def test_what_the_kernel_does_not_cover_is_plain_f_linear(case):
    x, w = _randn(2, 64, seed=5), _randn(24, 64, seed=6)
    if case == "nine rows":
        x = _randn(9, 64, seed=5)
    elif case == "K not a multiple of 32":
        x, w = _randn(2, 48, seed=5), _randn(24, 48, seed=6)
    elif case == "fp32":
        x, w = x.float(), w.float()
    elif case == "transposed weight":
        w = _randn(64, 24, seed=6).T
    else:
        assert torch.equal(K.linear(x, w, backend="torch"), F.linear(x, w))
        return
    assert linear_cpu.linear_few_rows(x, w) is None
    assert torch.equal(K.linear(x, w), F.linear(x, w))


@pytest.mark.parametrize("bias_shape", [(5,), (1,), ()])
def test_a_bias_that_does_not_match_is_never_read_by_the_kernel(bias_shape):
    """The C loop reads bias[0..N): anything else goes to F.linear, which broadcasts or raises."""
    x, w = _randn(1, 64, seed=7), _randn(37, 64, seed=8)
    bias = _randn(*bias_shape, seed=9) if bias_shape else torch.tensor(0.5).bfloat16()
    assert linear_cpu.linear_few_rows(x, w, bias) is None
    if bias_shape == (5,):
        with pytest.raises(RuntimeError):
            K.linear(x, w, bias)
    else:
        assert torch.equal(K.linear(x, w, bias), F.linear(x, w, bias))


@needs_kernel
def test_bf16_decoding_goes_through_the_kernel(monkeypatch):
    from tiny_checkpoints import tiny_checkpoint

    from vlagent.model import load_model

    model = load_model(tiny_checkpoint("dense"), device="cpu", dtype=torch.bfloat16, with_vision=False)
    rows = []
    real = linear_cpu.linear_few_rows

    def spy(x, w, b=None):
        y = real(x, w, b)
        rows.append((x.numel() // x.shape[-1], y is not None))
        return y

    monkeypatch.setattr(linear_cpu, "linear_few_rows", spy)
    out = model.generate(torch.tensor([[5, 6, 7, 8]]), max_new_tokens=4)
    assert out.shape == (1, 8)
    single = [used for n, used in rows if n == 1]
    assert single and all(single), "one-token steps should take the few-row kernel"


def test_matvec_mode_shares_one_switch_between_threads_and_restores_it(monkeypatch):
    """Without the few-row kernel, one-token steps switch oneDNN off process-wide: two threads'
    overlapping blocks must not turn it back on under each other, and an exception restores it."""
    import threading

    from vlagent.kernels import dispatch

    monkeypatch.setattr(dispatch.linear_cpu, "KERNEL", type("NoKernel", (), {"lib": None})())
    cpu = torch.device("cpu")
    assert torch.backends.mkldnn.enabled
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def first():
        with K.matvec_mode(cpu):
            first_in.set()
            second_in.wait(10)
        first_out.set()

    def second():
        first_in.wait(10)
        with K.matvec_mode(cpu):
            second_in.set()
            first_out.wait(10)
            seen["after_first_left"] = torch.backends.mkldnn.enabled

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert seen == {"after_first_left": False}
    assert torch.backends.mkldnn.enabled
    with pytest.raises(RuntimeError, match="boom"):
        with K.matvec_mode(cpu):
            assert not torch.backends.mkldnn.enabled
            raise RuntimeError("boom")
    assert torch.backends.mkldnn.enabled
    with K.matvec_mode(cpu, active=False), K.matvec_mode(torch.device("meta")):
        assert torch.backends.mkldnn.enabled
