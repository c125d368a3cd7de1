"""FTZ/DAZ on every intra-op thread for the engine's CPU decoder (kernels/denormals.py)."""
import pytest
import torch

from vlagent import kernels
from vlagent.kernels import denormals

needs_helper = pytest.mark.skipif(denormals.KERNEL.reason is not None,
                                  reason=f"no FTZ helper: {denormals.KERNEL.reason}")


def flushing_threads() -> int:
    """How many of PyTorch's intra-op threads currently flush subnormals (0 without the helper)."""
    lib = denormals.KERNEL.lib
    return 0 if lib is None else lib.vl_count_flushing_threads(torch.get_num_threads())


@needs_helper
def test_every_thread_flushes_inside_and_none_after():
    threads = torch.get_num_threads()
    assert flushing_threads() == 0
    with kernels.flush_denormals("cpu"):
        assert flushing_threads() == threads
        with kernels.flush_denormals("cpu"):  # nested: the inner exit leaves the outer mode on
            pass
        assert flushing_threads() == threads
    assert flushing_threads() == 0


@needs_helper
def test_subnormal_results_become_zero_on_all_threads_only_inside():
    x = torch.full((1 << 20,), 1e-30)  # big enough to be split across the intra-op threads
    outside = x * 1e-10  # 1e-40: subnormal
    assert bool((outside > 0).all())
    with kernels.flush_denormals("cpu"):
        inside = x * 1e-10
        normal = x * 1e-5
    assert bool((inside == 0).all())
    assert torch.equal(normal, x * 1e-5)  # normal numbers untouched


def test_other_devices_are_left_alone():
    with kernels.flush_denormals("meta"):
        assert flushing_threads() == 0


def test_strongly_decaying_heads_give_the_same_delta_rule_output():
    """Gates of -40 per token push the chunked form's products below fp32's normal range; treating
    those as zero must not move the outputs or the state (tolerances of fp32 parity)."""
    g = torch.Generator().manual_seed(0)
    B, T, H, D = 1, 150, 4, 32
    q, k, v = (torch.randn(B, T, H, D, generator=g) for _ in range(3))
    gate = -torch.rand(B, T, H, generator=g) * torch.tensor([0.1, 5.0, 40.0, 80.0])
    beta = torch.rand(B, T, H, generator=g)
    args = dict(output_final_state=True, use_qk_l2norm_in_kernel=True)
    o_ref, s_ref = kernels.chunk_gated_delta_rule(q, k, v, gate, beta, backend="torch", **args)
    with kernels.flush_denormals("cpu"):
        o, s = kernels.chunk_gated_delta_rule(q, k, v, gate, beta, **args)
    torch.testing.assert_close(o, o_ref, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(s, s_ref, atol=1e-5, rtol=1e-4)


@needs_helper
def test_each_threads_own_mode_is_restored_even_after_an_error():
    threads = torch.get_num_threads()
    with pytest.raises(RuntimeError, match="inside"):
        with kernels.flush_denormals("cpu"):
            assert flushing_threads() == threads
            raise RuntimeError("inside")
    assert flushing_threads() == 0
    # a caller that already flushes on this thread only: the workers go back to not flushing
    if threads > 1:
        torch.set_flush_denormal(True)
        try:
            with kernels.flush_denormals("cpu"):
                assert flushing_threads() == threads
            assert flushing_threads() == 1
        finally:
            torch.set_flush_denormal(False)
    assert flushing_threads() == 0
