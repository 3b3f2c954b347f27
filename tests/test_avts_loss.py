"""avssl.losses.avts_loss: the AVTS contrastive loss on small fixed tensors, against values worked out by hand."""
import pytest
import torch

from avssl.losses import avts_loss, negative_term, pair_distance, positive_term

# --- AVTS: E = 1/N sum y d + (1 - y) max(eta - d, 0)^2 ---------------------------------------------

VIDEO = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
AUDIO = torch.tensor([[3.0, 4.0], [1.0, 0.0], [0.0, 0.5]])  # distances 5, 0, 0.5


def test_pair_distance_is_the_l2_distance_of_each_row():
    assert pair_distance(VIDEO, AUDIO).tolist() == pytest.approx([5.0, 0.0, 0.5])


def test_avts_positive_pairs_cost_their_distance():
    d = pair_distance(VIDEO, AUDIO)
    assert positive_term(d).tolist() == pytest.approx([5.0, 0.0, 0.5])
    assert float(avts_loss(d, torch.tensor([True, True, True]), margin=1.0)) == pytest.approx((5 + 0 + 0.5) / 3)


def test_avts_negative_pairs_cost_the_squared_hinge():
    d = pair_distance(VIDEO, AUDIO)
    # max(1 - 5, 0)^2 = 0 (already beyond the margin), (1 - 0)^2 = 1, (1 - 0.5)^2 = 0.25
    assert negative_term(d, 1.0).tolist() == pytest.approx([0.0, 1.0, 0.25])
    assert float(avts_loss(d, torch.tensor([False, False, False]), margin=1.0)) == pytest.approx(1.25 / 3)
    # a wider margin reaches the far pair too: (6 - 5)^2 = 1, 36, 30.25
    assert float(avts_loss(d, torch.tensor([False, False, False]), margin=6.0)) == pytest.approx(67.25 / 3)


def test_avts_mixed_batch_averages_over_all_pairs():
    d = pair_distance(VIDEO, AUDIO)
    # pair 0 in sync (5), pairs 1 and 2 out of sync (1 and 0.25)
    assert float(avts_loss(d, torch.tensor([True, False, False]), margin=1.0)) == pytest.approx(6.25 / 3)


def test_avts_gradient_at_zero_distance_is_finite():
    v = torch.zeros(1, 3, requires_grad=True)
    avts_loss(pair_distance(v, torch.zeros(1, 3)), torch.tensor([False]), 1.0).backward()
    assert torch.isfinite(v.grad).all()
