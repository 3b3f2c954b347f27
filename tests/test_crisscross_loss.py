"""avssl.losses.crisscross_loss: the CrissCross loss (Eqs. 1-5) on small fixed tensors, against values
worked out by hand."""
import math

import pytest
import torch

from avssl.losses import (
    Branch, a1a2_loss, async_loss, crisscross_loss, intra_loss, negative_cosine, sync_loss, v1v2_loss,
)
from avssl.models.heads import predictor

R = 1 / math.sqrt(2)

# --- CrissCross: Eqs. 1-5 ---------------------------------------------------------------------------
# Directions (degrees), with lengths other than 1 so that the normalisation of Eq. 1 is exercised:
#   p_v1 0, p_v2 90, p_a1 180, p_a2 45;  z_v1 90, z_v2 45, z_a1 0, z_a2 225.


def _vec(*xy):
    return torch.tensor([list(xy)], dtype=torch.float32)


def _branches(requires_grad=False):
    def b(z, p):
        return Branch(z.requires_grad_(requires_grad), p.requires_grad_(requires_grad))
    v1 = b(_vec(0.0, 4.0), _vec(2.0, 0.0))
    v2 = b(_vec(2.0, 2.0), _vec(0.0, 0.5))
    a1 = b(_vec(5.0, 0.0), _vec(-3.0, 0.0))
    a2 = b(_vec(-1.0, -1.0), _vec(1.0, 1.0))
    return v1, v2, a1, a2


def test_negative_cosine_is_eq1():
    assert negative_cosine(_vec(2.0, 0.0), _vec(3.0, 3.0)).tolist() == pytest.approx([-R])
    assert negative_cosine(_vec(0.0, 1.0), _vec(0.0, -7.0)).tolist() == pytest.approx([1.0])


def test_intra_term_eq2():
    v1, v2, a1, a2 = _branches()
    # D(p_v1, z_v2) = -cos 45 = -R; D(p_v2, z_v1) = -cos 0 = -1; D(p_a1, z_a2) = -cos 45 = -R;
    # D(p_a2, z_a1) = -cos 45 = -R. Halves summed, then / 2.
    assert float(intra_loss(v1, v2, a1, a2)) == pytest.approx(-(3 * R + 1) / 4)
    assert float(v1v2_loss(v1, v2)) == pytest.approx(-(R + 1) / 2)
    assert float(a1a2_loss(a1, a2)) == pytest.approx(-R)


def test_sync_term_eq3():
    v1, v2, a1, a2 = _branches()
    # D(p_v1, z_a1) = -cos 0 = -1; D(p_a1, z_v1) = -cos 90 = 0; D(p_v2, z_a2) = -cos 135 = R;
    # D(p_a2, z_v2) = -cos 0 = -1.
    assert float(sync_loss(v1, v2, a1, a2)) == pytest.approx((-1 + 0 + R - 1) / 4)


def test_async_term_eq4():
    v1, v2, a1, a2 = _branches()
    # D(p_v1, z_a2) = -cos 225 = R; D(p_a2, z_v1) = -cos 45 = -R; D(p_v2, z_a1) = -cos 90 = 0;
    # D(p_a1, z_v2) = -cos 135 = R.
    assert float(async_loss(v1, v2, a1, a2)) == pytest.approx(R / 4)


def test_total_is_eq5_and_variants_average_their_terms():
    v1, v2, a1, a2 = _branches()
    intra, sync, asyn = -(3 * R + 1) / 4, (R - 2) / 4, R / 4
    total, parts = crisscross_loss(v1, v2, a1, a2)
    assert float(total) == pytest.approx((intra + sync + asyn) / 3)
    assert {k: float(v) for k, v in parts.items()} == pytest.approx({"intra": intra, "sync": sync, "async": asyn})
    total, _ = crisscross_loss(v1, v2, a1, a2, ("sync", "intra"))
    assert float(total) == pytest.approx((sync + intra) / 2)
    total, _ = crisscross_loss(v1, v2, None, None, ("v1v2",))  # uni-modal: the audio branches are not needed
    assert float(total) == pytest.approx(-(R + 1) / 2)


def test_terms_are_means_over_the_batch():
    v1, v2, a1, a2 = _branches()
    twice = [Branch(torch.cat([b.z, b.z.flip(0)]), torch.cat([b.p, b.p])) for b in (v1, v2, a1, a2)]
    assert float(sync_loss(*twice)) == pytest.approx(float(sync_loss(v1, v2, a1, a2)))


def test_no_gradient_reaches_the_targets():
    v1, v2, a1, a2 = _branches(requires_grad=True)
    crisscross_loss(v1, v2, a1, a2)[0].backward()
    for b in (v1, v2, a1, a2):
        assert b.z.grad is None  # z enters only as S(z)
        assert b.p.grad is not None
    assert sum(float(b.p.grad.abs().sum()) for b in (v1, v2, a1, a2)) > 0


def test_stop_gradient_equals_constant_targets_through_a_predictor():
    """With p = h(z), z learns only through its own prediction: the gradient is the one obtained
    when every target is replaced by a constant copy."""
    torch.manual_seed(0)
    h = predictor(8, 4).eval()  # eval: BatchNorm uses running statistics, a per-row function
    zs = [torch.randn(3, 8, requires_grad=True) for _ in range(4)]
    crisscross_loss(*[Branch(z, h(z)) for z in zs])[0].backward()
    got = [z.grad.clone() for z in zs]
    consts = [z.detach().clone() for z in zs]
    fresh = [z.detach().clone().requires_grad_(True) for z in zs]
    # the targets are the constants; the predictions come from the fresh copies
    loss = 0.0
    pairs = [(0, 1), (1, 0), (2, 3), (3, 2), (0, 2), (2, 0), (1, 3), (3, 1), (0, 3), (3, 0), (1, 2), (2, 1)]
    for i, j in pairs:  # the 12 halves of Eqs. 2-4, each 1/2 D, each equation / 2, Eq. 5 / 3
        loss = loss + 0.5 * negative_cosine(h(fresh[i]), consts[j]).mean() / 2 / 3
    loss.backward()
    for g, z in zip(got, fresh):
        torch.testing.assert_close(g, z.grad)
