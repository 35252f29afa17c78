"""Zero-order-hold integration against the exact solution of a linear controlled system."""

import numpy as np
import pytest
import torch
from torch import nn

from tests.synthetic import A, B, zoh_step
from worldmodel.models.integrate import odeint_zoh, step_zoh, subdivide


class Linear(nn.Module):
    def forward(self, z, a):
        return z @ torch.as_tensor(A.T) + a @ torch.as_tensor(B.T)


def exact(z0, grid, actions):
    out = [z0]
    for k in range(len(grid) - 1):
        out.append(
            np.stack(
                [zoh_step(z, a, grid[k + 1] - grid[k]) for z, a in zip(out[-1], actions[:, k])]
            )
        )
    return np.stack(out)


@pytest.mark.parametrize(
    "method, max_step, tol", [("rk4", 0.02, 1e-6), ("dopri5", None, 1e-6), ("euler", 0.001, 2e-2)]
)
def test_piecewise_constant_actions_match_closed_form(method, max_step, tol):
    rng = np.random.default_rng(0)
    grid = np.concatenate([[0.0], np.cumsum(rng.integers(1, 5, 25) * 0.05)])
    actions = rng.uniform(-1, 1, size=(3, len(grid), 1))  # switches at every grid time
    z0 = rng.uniform(-1, 1, size=(3, 2))
    out = odeint_zoh(
        Linear(),
        torch.as_tensor(z0),
        torch.as_tensor(grid),
        torch.as_tensor(actions),
        method=method,
        max_step=max_step,
        rtol=1e-9,
        atol=1e-10,
    )
    np.testing.assert_allclose(out.numpy(), exact(z0, grid, actions), atol=tol)


def test_switching_matters():
    """Sanity of the test itself: integrating with the action of the wrong interval is far off."""
    rng = np.random.default_rng(1)
    grid = np.arange(11) * 0.2
    actions = rng.uniform(-1, 1, size=(1, 11, 1))
    z0 = np.zeros((1, 2))
    right = odeint_zoh(
        Linear(), torch.as_tensor(z0), torch.as_tensor(grid), torch.as_tensor(actions), method="rk4"
    )
    wrong = odeint_zoh(
        Linear(),
        torch.as_tensor(z0),
        torch.as_tensor(grid),
        torch.as_tensor(np.roll(actions, 1, 1)),
        method="rk4",
    )
    assert np.abs(right.numpy() - wrong.numpy()).max() > 1e-2


def test_step_with_a_different_dt_per_row():
    rng = np.random.default_rng(2)
    z = rng.uniform(-1, 1, size=(4, 2))
    a = rng.uniform(-1, 1, size=(4, 1))
    dt = np.array([0.05, 0.1, 0.3, 0.7])
    out = step_zoh(
        Linear(),
        torch.as_tensor(z),
        torch.as_tensor(a),
        torch.as_tensor(dt),
        method="rk4",
        max_step=0.01,
    )
    want = np.stack([zoh_step(z[i], a[i], dt[i]) for i in range(4)])
    np.testing.assert_allclose(out.numpy(), want, atol=1e-8)


def test_subdivide_keeps_grid_points():
    grid = torch.tensor([0.0, 0.1, 0.35, 0.4], dtype=torch.float64)
    fine = subdivide(grid, 0.1)
    assert all(bool((fine == g).any()) for g in grid)
    assert fine.diff().max() <= 0.1 + 1e-12 and len(fine) == 1 + 1 + 3 + 1


def test_unknown_solver_is_named():
    with pytest.raises(ValueError, match="rk45"):
        odeint_zoh(
            Linear(),
            torch.zeros(1, 2, dtype=torch.float64),
            torch.tensor([0.0, 1.0], dtype=torch.float64),
            torch.zeros(1, 2, 1, dtype=torch.float64),
            method="rk45",
        )


def test_coarse_steps_still_stop_at_every_switch():
    """max_step larger than the grid spacing: only switch times constrain the solver."""
    rng = np.random.default_rng(3)
    grid = np.arange(41) * 0.05
    held = np.repeat(rng.uniform(-1, 1, size=(2, 5, 1)), 8, axis=1)  # switches every 8 points
    actions = np.concatenate([held, held[:, -1:]], 1)
    z0 = rng.uniform(-1, 1, size=(2, 2))
    out = odeint_zoh(
        Linear(),
        torch.as_tensor(z0),
        torch.as_tensor(grid),
        torch.as_tensor(actions),
        method="rk4",
        max_step=0.1,
    )
    want = exact(z0, grid, actions)
    knots = np.arange(0, 41, 8)  # solver points: exact to rk4's error
    np.testing.assert_allclose(out.numpy()[knots], want[knots], atol=1e-4)
    np.testing.assert_allclose(out.numpy(), want, atol=5e-3)  # linear interpolation in between


def test_float_noise_in_equal_steps_is_not_a_switch():
    from worldmodel.models.integrate import switch_index

    t = (torch.arange(201, dtype=torch.float64) / 200).float()  # the paper protocol's clock
    dt = t.diff().expand(3, 200).clone()
    assert dt.unique().numel() > 1  # float32 differences of equal steps are not all equal
    none = torch.zeros(3, 200, 0)
    assert len(switch_index(none, dt)) == 0
    dt[1, 120:] = 0.0  # one row ends: a real change of step length
    dt[2, 50] = 0.0075
    assert switch_index(none, dt).tolist() == [50, 51, 120]


class Tanh(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 2).double()

    def forward(self, z, a):
        return torch.tanh(self.lin(torch.cat([z, a], -1)))


@pytest.mark.parametrize("method, max_step", [("rk4", None), ("rk4", 0.03), ("midpoint", 0.01)])
def test_adjoint_works_with_fixed_step_solvers(method, max_step):
    """The adjoint's backward solve runs one output interval at a time, in reverse; torchdiffeq
    asserted when it got the whole forward grid. Its gradient must match backpropagation
    through the solver, with the action switches seen on the right side."""
    torch.manual_seed(0)
    f = Tanh()
    grid = torch.tensor([0.0, 0.1, 0.25, 0.3, 0.5], dtype=torch.float64)
    actions = torch.randn(4, 5, 1, dtype=torch.float64)  # a switch at every grid time
    z0 = torch.randn(4, 2, dtype=torch.float64)
    grads = []
    for adjoint in (False, True):
        f.zero_grad()
        out = odeint_zoh(f, z0, grid, actions, method=method, max_step=max_step, adjoint=adjoint)
        out.pow(2).sum().backward()
        grads.append(f.lin.weight.grad.clone())
    scale = grads[0].abs().max()
    # the continuous adjoint equals the discrete gradient only to the solver's order
    tol = 1e-5 if method == "rk4" else 2e-2
    assert (grads[0] - grads[1]).abs().max() <= tol * scale


def test_an_interval_of_exactly_max_step_is_one_step():
    """The env's own dt in seconds -> model units in float32 lands a hair above max_step
    (0.008 / 0.1 = 0.08000001); that is still one RK4 step (it used to be two, halving the
    imagined env's speed), while a genuinely longer interval is split."""

    class Counting(nn.Module):
        calls = 0

        def forward(self, z, a):
            Counting.calls += 1
            return -z + a

    f, z, a = Counting(), torch.ones(4, 2), torch.zeros(4, 2)
    dt = torch.full((4,), 0.008, dtype=torch.float32) / 0.1
    step_zoh(f, z, a, dt, method="rk4", max_step=0.008 / 0.1)
    assert Counting.calls == 4  # one RK4 step: four evaluations
    Counting.calls = 0
    step_zoh(f, z, a, dt * 1.01, method="rk4", max_step=0.008 / 0.1)
    assert Counting.calls == 8


@pytest.mark.parametrize("method, max_step", [("rk4", None), ("rk4", 0.04), ("midpoint", 0.02)])
def test_held_steps_equal_odeint_on_the_own_step_clock(method, max_step):
    """The fast path (a loop over held intervals) is odeint_zoh on the clock 0, 1, ..., K with
    the per-row lengths as time scale: same steps, same formula; rows with a zero length
    (padding) stay put, and one negative length runs back in time."""
    from worldmodel.models.integrate import held_steps

    torch.manual_seed(1)
    f = Tanh()
    K = 6
    actions = torch.randn(5, K, 1, dtype=torch.float64)
    duration = torch.rand(5, K, dtype=torch.float64) * 0.1
    duration[3, 4:] = 0.0
    duration[4, 2] = -0.05
    z0 = torch.randn(5, 2, dtype=torch.float64)
    clock = torch.arange(K + 1, dtype=torch.float64)
    pad = torch.cat([actions, actions[:, -1:]], 1)
    scale = torch.cat([duration, duration[:, -1:]], 1)
    want = odeint_zoh(f, z0, clock, pad, method=method, max_step=max_step, scale=scale)
    got = held_steps(f, z0, actions, duration, method=method, max_step=max_step)
    assert got.shape == (5, K + 1, 2)
    torch.testing.assert_close(got, want.transpose(0, 1), rtol=1e-12, atol=1e-12)
    assert torch.equal(got[3, 4:], got[3, 4:5].expand(3, 2))
    with pytest.raises(ValueError, match="dopri5"):
        held_steps(f, z0, actions, duration, method="dopri5")
    with pytest.raises(ValueError, match=r"duration \(N, K\)"):
        held_steps(f, z0, actions, duration[:, :-1])


def test_held_steps_match_the_closed_form():
    from worldmodel.models.integrate import held_steps

    rng = np.random.default_rng(4)
    durations = rng.integers(1, 5, size=(3, 12)) * 0.05
    actions = rng.uniform(-1, 1, size=(3, 12, 1))
    z0 = rng.uniform(-1, 1, size=(3, 2))
    got = held_steps(
        Linear(),
        torch.as_tensor(z0),
        torch.as_tensor(actions),
        torch.as_tensor(durations),
        max_step=0.02,
    ).numpy()
    for r in range(3):
        grid = np.concatenate([[0.0], np.cumsum(durations[r])])
        np.testing.assert_allclose(
            got[r], exact(z0[r : r + 1], grid, actions[r : r + 1])[:, 0], atol=1e-6
        )
