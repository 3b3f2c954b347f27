"""The one training step (engine/step.py) on a tiny linear model: SGD's update by hand, the learning
rate from the schedule, gradient clipping, autocast, and a diverged loss that changes nothing."""
import math

import pytest
import torch
from torch import nn

from avssl.config import OptimConfig
from avssl.engine.schedule import learning_rate
from avssl.engine.step import clip_gradients, train_step
from avssl.errors import TrainingDiverged

CPU = torch.device("cpu")
X = torch.tensor([[1.0, 2.0], [3.0, -1.0]])
Y = torch.tensor([1.0, 0.0])


def _model() -> nn.Linear:
    model = nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.5, -0.25]]))
        model.bias.fill_(0.1)
    return model


def _mse(model):
    def loss_fn(batch):
        x, y = batch
        return ((model(x).squeeze(1) - y) ** 2).mean(), {"items": float(len(y))}
    return loss_fn


def _never(loss):
    raise AssertionError(f"a finite loss was taken for a diverged one ({loss})")


def test_a_step_moves_the_weights_as_sgd_says_at_the_schedules_rate():
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=123.0)  # the step, not the constructor, sets the rate
    o = OptimConfig(lr=0.1, warmup_epochs=2, step_epochs=10, gamma=0.1)
    lr = learning_rate(o, 0.5)  # a quarter of the way through the warm-up
    w, b = model.weight.detach().clone(), model.bias.detach().clone()
    residual = X @ w[0] + b - Y  # MSE's gradient by hand: 2/n sum(residual * x), 2/n sum(residual)
    expected_loss = float((residual ** 2).mean())

    logs = train_step(_mse(model), (X, Y), opt, lr, device=CPU, precision="fp32", diverged=_never)

    assert lr == pytest.approx(0.025) and opt.param_groups[0]["lr"] == lr
    torch.testing.assert_close(model.weight.detach(), w - lr * (2 / 2) * (residual @ X).unsqueeze(0))
    torch.testing.assert_close(model.bias.detach(), b - lr * (2 / 2) * residual.sum().unsqueeze(0))
    assert logs == {"items": 2.0, "loss": pytest.approx(expected_loss)}  # the loss function's logs, plus the loss


def test_a_second_step_starts_from_fresh_gradients():
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    train_step(_mse(model), (X, Y), opt, 0.0, device=CPU, precision="fp32", diverged=_never)  # rate 0: no move
    first = model.weight.grad.clone()
    train_step(_mse(model), (X, Y), opt, 0.0, device=CPU, precision="fp32", diverged=_never)
    torch.testing.assert_close(model.weight.grad, first)  # not accumulated over the two steps


def test_a_non_finite_loss_raises_the_callers_error_and_leaves_everything_as_it_was():
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    train_step(_mse(model), (X, Y), opt, 0.1, device=CPU, precision="fp32", diverged=_never)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    grads = [p.grad.clone() for p in model.parameters()]
    momentum = [opt.state[p]["momentum_buffer"].clone() for p in model.parameters()]
    bad_y = torch.tensor([math.nan, 0.0])

    with pytest.raises(TrainingDiverged, match=r"^the loss became nan at epoch 3, step 7; lower the rate$"):
        train_step(_mse(model), (X, bad_y), opt, 0.5, device=CPU, precision="fp32",
                   diverged=lambda loss: TrainingDiverged(f"the loss became {loss} at epoch 3, step 7; lower the rate"))
    with pytest.raises(TrainingDiverged, match="became inf"):
        train_step(lambda batch: (torch.tensor(math.inf, requires_grad=True), {}), None, opt, 0.5, device=CPU,
                   precision="fp32", diverged=lambda loss: TrainingDiverged(f"became {loss}"))

    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, model.parameters()))  # not even zeroed
    assert all(torch.equal(m, opt.state[p]["momentum_buffer"]) for m, p in zip(momentum, model.parameters()))


def test_clipping_logs_the_norm_before_and_steps_with_the_clipped_gradient():
    unclipped, clipped = _model(), _model()
    lr = 0.1
    logs = train_step(_mse(unclipped), (X, Y), torch.optim.SGD(unclipped.parameters(), lr=lr), lr, device=CPU,
                      precision="fp32", diverged=_never, clip_params=unclipped.parameters())
    grads = torch.cat([p.grad.flatten() for p in unclipped.parameters()])
    assert logs["grad_norm"] == pytest.approx(float(grads.norm()))  # measured, and with no limit not clipped
    assert logs["grad_norm"] > 1.0

    logs = train_step(_mse(clipped), (X, Y), torch.optim.SGD(clipped.parameters(), lr=lr), lr, device=CPU,
                      precision="fp32", diverged=_never, clip_params=clipped.parameters(), clip_grad_norm=1.0)
    assert logs["grad_norm"] == pytest.approx(float(grads.norm()))  # the norm before clipping
    scale = 1.0 / float(grads.norm())
    start = _model()
    for before, after, grad in zip(start.parameters(), clipped.parameters(), grads.split([2, 1])):
        torch.testing.assert_close(after.detach().flatten(), before.detach().flatten() - lr * scale * grad,
                                   rtol=1e-5, atol=1e-6)


def test_clip_gradients_leaves_out_parameters_without_a_gradient():
    used, frozen = nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(3))
    used.grad = torch.tensor([3.0, 4.0])
    assert clip_gradients([used, frozen], 1.0) == pytest.approx(5.0)
    torch.testing.assert_close(used.grad, torch.tensor([0.6, 0.8]))
    assert frozen.grad is None
    assert clip_gradients([frozen], 1.0) == 0.0


@pytest.mark.parametrize("precision, autocast_on", [("fp32", False), ("bf16", True)])
def test_the_loss_function_runs_under_the_requested_precision(precision, autocast_on):
    model = _model()
    seen = []

    def loss_fn(batch):
        seen.append(torch.is_autocast_enabled("cpu"))
        return _mse(model)(batch)

    train_step(loss_fn, (X, Y), torch.optim.SGD(model.parameters(), lr=0.1), 0.1, device=CPU, precision=precision,
               diverged=_never)
    assert seen == [autocast_on] and not torch.is_autocast_enabled("cpu")
