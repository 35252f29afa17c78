"""Planners against problems with a closed-form best action."""

import numpy as np
import pytest
import torch

from agents.planners import PLANNERS, PlannerConfig, make_planner

DT, C = 0.5, 0.1


def point_mass(x0: float):
    """One step of x' = x + a dt with reward -(x'^2 + C a^2): best a = -x dt / (dt^2 + C)."""

    def objective(actions: torch.Tensor) -> torch.Tensor:
        a = actions[:, 0, 0]
        x1 = x0 + a * DT
        return -(x1**2 + C * a**2)

    return objective, -x0 * DT / (DT**2 + C)


@pytest.mark.parametrize("name", sorted(PLANNERS))
@pytest.mark.parametrize("x0", [-1.0, 0.3, 2.0])
def test_planner_finds_the_closed_form_action(name, x0):
    objective, best = point_mass(x0)
    best_clipped = max(-2.0, min(2.0, best))
    cfg = PlannerConfig(
        horizon=1, population=200, iterations=6, elites=20, temperature=0.01, warm_start=False
    )
    planner = make_planner(
        name, torch.tensor([-2.0]), torch.tensor([2.0]), cfg, torch.Generator().manual_seed(0)
    )
    a = planner.plan(objective)
    assert a.shape == (1,)
    assert float(a) == pytest.approx(best_clipped, abs=0.03)


def test_multi_step_double_integrator_goes_home():
    """Position and velocity under a held force: planning 10 steps ahead, the first action must
    push back towards the origin, and following the plans brings the mass home."""
    x, v = 1.0, 0.0
    planner = make_planner(
        "cem",
        torch.tensor([-1.0]),
        torch.tensor([1.0]),
        PlannerConfig(horizon=10, population=300, iterations=4),
        torch.Generator().manual_seed(1),
    )

    def objective_from(x0, v0):
        def objective(actions):
            xs, vs = torch.full((actions.shape[0],), x0), torch.full((actions.shape[0],), v0)
            total = torch.zeros(actions.shape[0])
            for h in range(actions.shape[1]):
                vs = vs + actions[:, h, 0] * 0.1
                xs = xs + vs * 0.1
                total -= xs**2 + 0.1 * vs**2
            return total

        return objective

    first = planner.plan(objective_from(x, v))
    assert float(first) < -0.5
    for _ in range(60):
        a = float(planner.plan(objective_from(x, v)))
        v += a * 0.1
        x += v * 0.1
    assert abs(x) < 0.1 and abs(v) < 0.2


def test_unknown_planner_lists_names():
    with pytest.raises(ValueError, match=r"\['cem', 'mppi'\]"):
        make_planner("ilqr", torch.zeros(1), torch.ones(1))


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", sorted(PLANNERS))
def test_model_objective_hands_the_model_tensors_on_its_own_device(name, device):
    """The planner samples on the CPU; model_objective must move what the model and the task
    see to the model's device (a CUDA model was given CPU tensors), and give returns back."""
    from torch import nn

    from agents.planners import model_objective

    class Spy(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 2)
            self.seen = set()

        def step(self, s, a, d):
            self.seen |= {s.device, a.device, d.device}
            s = s + d[:, None] * torch.tanh(self.lin(torch.cat([s, a], -1)))
            return s, s

        def denormalize(self, x):
            self.seen.add(x.device)
            return x

    model = Spy().to(device)

    class Task:
        @staticmethod
        def reward(o, a, nxt, dt):
            model.seen |= {o.device, a.device, nxt.device, dt.device}
            return -(nxt**2).sum(-1) - 0.1 * (a**2).sum(-1), {}

        @staticmethod
        def terminated(o, a, nxt, dt):
            return nxt.abs().amax(-1) > 10

    state = torch.ones(2, 2)  # a CPU belief too: moved as well
    cfg = PlannerConfig(horizon=3, population=16, iterations=2, elites=4, particles=2)
    planner = make_planner(
        name, torch.tensor([-1.0]), torch.tensor([1.0]), cfg, torch.Generator().manual_seed(0)
    )
    objective = model_objective(model, Task(), state, torch.zeros(2), 0.1, particles=2)
    action = planner.plan(objective)
    assert model.seen == {next(model.parameters()).device}
    assert action.device.type == "cpu" and action.shape == (1,) and torch.isfinite(action).all()


def test_particles_of_an_ensemble_follow_their_own_sampled_trajectories():
    """PETS-style sampling: with particles > 1 each particle of a candidate steps through a
    random member plus its noise (they differ); with one particle, the deterministic mean step."""
    from agents.planners import model_objective
    from worldmodel.models import ModelConfig, make_model

    model = make_model("mlp-ensemble", 2, 1, ModelConfig(ensemble_units=8, ensemble_layers=1))
    with torch.no_grad():
        model.max_logvar.fill_(0.0)  # visible noise
    seen = []
    real = model.sample_step

    def spy(s, a, d, g=None):
        out = real(s, a, d, g)
        seen.append(out[0].clone())
        return out

    model.sample_step = spy

    class Task:
        @staticmethod
        def reward(o, a, nxt, dt):
            return -(nxt**2).sum(-1), {}

        @staticmethod
        def terminated(o, a, nxt, dt):
            return torch.zeros(len(nxt), dtype=torch.bool)

    state, obs, cands = torch.zeros(1, 2), torch.zeros(2), torch.zeros(3, 2, 1)
    run = lambda p, seed: model_objective(  # noqa: E731
        model, Task(), state, obs, 0.008, p, torch.Generator().manual_seed(seed)
    )(cands)
    r4 = run(4, 0)
    assert len(seen) == 2 and seen[0].shape == (3 * 4, 2)
    per_candidate = seen[0].view(3, 4, 2)
    assert (per_candidate[:, 1:] != per_candidate[:, :1]).any(-1).all()  # particles differ
    assert torch.equal(run(4, 0), r4) and not torch.equal(run(4, 1), r4)  # seeded
    seen.clear()
    r1 = run(1, 0)
    assert not seen and torch.allclose(r1, r1[:1].expand(3))  # mean step, no sampling


def test_a_terminal_value_is_added_discounted_to_the_rows_still_alive():
    from torch import nn

    from agents.planners import model_objective

    class Drift(nn.Module):  # the state moves by the action; observations are the state
        def __init__(self):
            super().__init__()
            self.p = nn.Parameter(torch.zeros(()))

        def step(self, s, a, d):
            return s + a, s + a

        def denormalize(self, x):
            return x

    class Task:
        @staticmethod
        def reward(o, a, nxt, dt):
            return torch.zeros(len(nxt), dtype=torch.float64), {}

        @staticmethod
        def terminated(o, a, nxt, dt):
            return nxt[:, 0] < -1.5  # a candidate pushing down twice falls

    cands = torch.tensor([[[1.0], [1.0]], [[0.0], [0.0]], [[-1.0], [-1.0]]])
    value = lambda o: 10.0 * o[:, 0]  # noqa: E731
    got = model_objective(
        Drift(), Task(), torch.zeros(1, 1), torch.zeros(1), 0.1, terminal=value, discount=0.5
    )(cands)
    torch.testing.assert_close(got, torch.tensor([0.25 * 20.0, 0.0, 0.0]))
    plain = model_objective(Drift(), Task(), torch.zeros(1, 1), torch.zeros(1), 0.1)(cands)
    assert torch.equal(plain, torch.zeros(3))


def test_the_simulator_objective_scores_what_the_real_env_does():
    """MPC with a perfect model: each candidate's return is the task's return along the
    observations the real env produces under those actions, and the env is left untouched."""
    from agents.planners import plan_returns, simulator_objective
    from envs import EnvSpec, make_env

    spec = EnvSpec("Hopper-v5")
    task = spec.task()
    env = make_env(spec)
    obs, _ = env.reset(seed=3)
    for a in np.random.default_rng(0).uniform(-1, 1, (5, 3)):  # a state away from the reset
        obs, *_ = env.step(a)
    qpos = env.unwrapped.data.qpos.copy()
    cand = torch.rand((4, 6, 3), generator=torch.Generator().manual_seed(0)) * 2 - 1
    got = simulator_objective(env, task, obs, substeps=4)(cand)
    assert got.shape == (4,) and got.dtype == torch.float32
    np.testing.assert_array_equal(env.unwrapped.data.qpos, qpos)  # planning did not move it
    for i, plan in enumerate(cand):
        twin = make_env(spec)
        twin.reset(seed=3)
        for a in np.random.default_rng(0).uniform(-1, 1, (5, 3)):
            twin.step(a)
        nxt = np.stack([twin.step(a.numpy())[0] for a in plan])
        want = plan_returns(
            task, torch.as_tensor(obs)[None], plan[None].double(), torch.as_tensor(nxt)[None], 0.008
        )
        assert float(got[i]) == float(want[0].float())  # the very same observations


def test_the_simulator_objective_refuses_an_observation_it_cannot_rebuild():
    from agents.planners import simulator_objective
    from envs import EnvSpec, make_env

    spec = EnvSpec("Ant-v5")  # its observation holds contact forces
    env = make_env(spec)
    obs, _ = env.reset(seed=0)
    with pytest.raises(ValueError, match="not qpos and qvel alone"):
        simulator_objective(env, spec.task(), obs, substeps=5)


def test_a_simulator_rollout_stopped_by_a_mujoco_warning_ends_its_plan_there():
    """MuJoCo's rollout repeats its last state after a warning (here: a NaN control at the
    third action); the plan is scored as ending there, not as a state held forever."""
    from agents.planners import simulator_objective
    from envs import EnvSpec, make_env

    spec = EnvSpec("Hopper-v5")
    env = make_env(spec)
    obs, _ = env.reset(seed=0)
    cand = torch.zeros((2, 5, 3))
    cand[1, 2, 0] = float("nan")
    full = simulator_objective(env, spec.task(), obs, 4)(cand)
    first_two = simulator_objective(env, spec.task(), obs, 4)(cand[:, :2])
    assert full[0] > first_two[0] and full[1] == first_two[1]


def test_a_given_start_is_searched_from_and_scored_first():
    low, high = -torch.ones(2), torch.ones(2)
    planner = make_planner("cem", low, high, PlannerConfig(horizon=3, population=4, iterations=1))
    start = torch.tensor([[0.5, -0.5], [0.2, 0.1], [2.0, 0.0]])  # the last beyond the bounds
    seen = []
    planner.plan(lambda c: seen.append(c.clone()) or torch.zeros(len(c)), start)
    torch.testing.assert_close(seen[0][0], start.clamp(-1, 1))
    with pytest.raises(ValueError, match="start must be"):
        planner.plan(lambda c: torch.zeros(len(c)), torch.zeros(2, 2))
