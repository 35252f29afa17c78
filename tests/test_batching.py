import numpy as np
import pytest
import torch

from tests.synthetic import linear_dataset
from worldmodel.batching import (
    Context,
    Normalizer,
    context_batch,
    cut_horizon,
    make_batch,
    sample_windows,
    tile_windows,
)


@pytest.fixture(scope="module")
def data():
    d = linear_dataset(8, 12, seed=1)
    return d.episodes, Normalizer.fit(d.episodes)


def test_union_grid_holds_every_window_with_zoh_actions(data):
    eps, norm = data
    windows = sample_windows(eps, 5, 8, np.random.default_rng(0))
    b = make_batch(eps, windows, norm, rng=np.random.default_rng(0))
    assert b.times[0] == 0 and (b.times.diff() > 0).all()
    for i, w in enumerate(windows):
        ep = eps[w.episode]
        own = torch.nonzero(b.exists[i]).flatten()
        rel = ep.t[w.start : w.stop] - ep.t[w.start]
        np.testing.assert_allclose(b.times[own].numpy(), rel, atol=1e-6)
        np.testing.assert_allclose(
            b.obs[i, own].numpy(), norm.normalize(ep.obs[w.start : w.stop]), atol=1e-5
        )
        for k in range(len(own) - 1):  # the action is held on the whole interval between own points
            held = b.actions[i, own[k] : own[k + 1]]
            assert (held == torch.as_tensor(ep.actions[w.start + k])).all()
        assert (b.actions[i, own[-1] :] == 0).all()


def test_masks_interp_and_extrap(data):
    eps, norm = data
    windows = tile_windows(eps, 10)
    bi = make_batch(eps, windows, norm, mode="interp", observed=0.3, rng=np.random.default_rng(0))
    assert (bi.target == bi.exists).all() and not (bi.context & ~bi.exists).any()
    n = bi.exists.sum(1)
    assert ((bi.context.sum(1) - (0.3 * n.float()).round().clamp(min=1)).abs() < 1e-6).all()
    be = make_batch(
        eps,
        windows,
        norm,
        mode="extrap",
        observed=0.5,
        context_fraction=0.5,
        rng=np.random.default_rng(0),
    )
    assert not (be.context & be.target).any() and not (be.target & ~be.exists).any()
    idx = torch.arange(be.times.shape[0])
    for i in range(be.size):  # every context point comes before every target point
        assert idx[be.context[i]].max() < idx[be.target[i]].min()
    again = make_batch(
        eps,
        windows,
        norm,
        mode="extrap",
        observed=0.5,
        context_fraction=0.5,
        rng=np.random.default_rng(0),
    )
    assert (again.context == be.context).all()


def test_anchor_is_the_start_when_interpolating_and_the_last_observation_otherwise(data):
    eps, norm = data
    windows = tile_windows(eps, 10)
    rng = np.random.default_rng(0)
    bi = make_batch(eps, windows, norm, mode="interp", observed=0.3, rng=rng)
    assert (bi.anchor() == 0).all()
    be = make_batch(eps, windows, norm, mode="extrap", observed=0.5, rng=rng)
    assert (be.anchor() == be.last_context()).all() and (be.anchor() > 0).any()
    ctx = [Context(ep.t[:4], ep.obs[:4], ep.actions[:3]) for ep in eps[:3]]
    bc = context_batch(ctx, norm)
    a = bc.anchor()
    assert not bc.target.any() and (a == bc.last_context()).all()
    assert (bc.exists & (torch.arange(bc.times.shape[0]) > a.unsqueeze(1))).sum() == 0


def test_own_steps_from_the_anchor(data):
    eps, norm = data
    b = make_batch(
        eps, tile_windows(eps, 10), norm, mode="extrap", observed=0.5, rng=np.random.default_rng(0)
    )
    anchor = b.anchor()
    own = b.own_steps(anchor)
    for i in range(b.size):
        have = torch.nonzero(b.exists[i] & (torch.arange(b.times.shape[0]) >= anchor[i])).flatten()
        n = len(have)
        assert (
            (own.pos[i, :n] == have).all() and own.valid[i, :n].all() and not own.valid[i, n:].any()
        )
        assert (
            own.inverse[i, : anchor[i] + 1] == 0
        ).all()  # earlier points read the anchor's value
        assert own.dt[i, n - 1 :].eq(0).all() and (own.dt[i, : n - 1] > 0).all()


@pytest.mark.parametrize("n, length", [(200, 100), (12, 5), (12, 12), (7, 10), (11, 6)])
def test_tile_windows_cover_every_point_with_full_windows(n, length):
    eps = linear_dataset(2, n - 1, seed=0).episodes
    assert len(eps[0]) == n
    ws = [w for w in tile_windows(eps, length) if w.episode == 0]
    covered = np.zeros(n, bool)
    for w in ws:
        assert w.stop - w.start == min(n, length)
        covered[w.start : w.stop] = True
    assert covered.all() and len(ws) == max(1, -(-(n - 1) // (length - 1)))


def test_bad_batch_settings(data):
    eps, norm = data
    w = tile_windows(eps, 5)
    with pytest.raises(ValueError, match="unknown batch mode 'sideways'"):
        make_batch(eps, w, norm, mode="sideways", rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="observed fraction"):
        make_batch(eps, w, norm, observed=0.0, rng=np.random.default_rng(0))


def test_a_near_constant_dimension_is_floored_relative_to_its_scale():
    import dataclasses
    import warnings

    d = linear_dataset(6, 10, seed=2)
    eps = []
    for i, ep in enumerate(d.episodes):
        obs = np.concatenate([ep.obs, np.full((len(ep), 2), [0.0, 50.0])], 1)
        obs[:, 2] += 1e-9 * i  # float noise on a dimension that never moved
        obs[:, 3] += 1e-4 * np.sin(np.arange(len(ep)))  # a big one that barely moves
        eps.append(dataclasses.replace(ep, obs=obs))
    with pytest.warns(UserWarning, match=r"dimensions \[2, 3\] are \(nearly\) constant"):
        norm = Normalizer.fit(eps)
    np.testing.assert_allclose(norm.std[2:], [1e-3, 5e-2], rtol=1e-6)
    assert (norm.std[:2] == np.concatenate([ep.obs for ep in eps])[:, :2].std(0)).all()
    # a test-time deviation of 0.01 on the dimension that never moved stays moderate
    moved = norm.normalize(np.array([0.0, 0.0, 0.01, 50.0]))
    assert abs(moved[2]) <= 10.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Normalizer.fit(d.episodes)  # ordinary data: no warning


def test_non_finite_training_data_is_refused_not_normalised(data):
    import dataclasses

    eps, norm = data
    for field, where in (("obs", (3, 1)), ("actions", (2, 0)), ("t", (4,))):
        bad = [dataclasses.replace(ep) for ep in eps]
        arr = getattr(bad[1], field).astype(np.float64)
        arr[where] = np.nan
        bad[1] = dataclasses.replace(bad[1], **{field: arr})
        with pytest.raises(ValueError, match=f"episode 1.*{field} has a non-finite value"):
            make_batch(bad, tile_windows(bad, 12), norm, rng=np.random.default_rng(0))
        if field == "obs":
            with pytest.raises(ValueError, match="non-finite value .* dimension 1"):
                Normalizer.fit(bad)


@pytest.mark.parametrize("field", ["t", "obs", "actions"])
def test_non_finite_context_is_refused(data, field):
    eps, norm = data
    ep = eps[0]
    ctx = {"t": ep.t[:4].copy(), "obs": ep.obs[:4].copy(), "actions": ep.actions[:3].copy()}
    ctx[field][(1,) + (0,) * (ctx[field].ndim - 1)] = np.nan
    with pytest.raises(ValueError, match="context 0 holds a non-finite value"):
        context_batch([Context(**ctx)], norm)


@pytest.mark.parametrize("mode", ["extrap", "interp"])
def test_cut_horizon_keeps_each_windows_first_targets_past_its_anchor(data, mode):
    eps, norm = data
    windows = sample_windows(eps, 16, 10, np.random.default_rng(2))
    b = make_batch(eps, windows, norm, mode=mode, observed=0.3, rng=np.random.default_rng(2))
    cut = cut_horizon(b, 2)
    anchor = b.anchor()
    assert torch.equal(cut.anchor(), anchor)
    U = cut.times.shape[0]
    assert U < b.times.shape[0] and torch.equal(cut.times, b.times[:U])
    whole = 0
    for i in range(b.size):
        own = torch.nonzero(b.exists[i]).flatten()
        scored = torch.nonzero(b.target[i] & (torch.arange(len(b.times)) > anchor[i])).flatten()
        kept = own[own <= scored[1]]
        if not b.context[i, kept].any():  # the cut would leave nothing to encode: kept whole
            kept, whole = own, whole + 1
        assert torch.nonzero(cut.exists[i]).flatten().tolist() == kept.tolist()
        assert cut.context[i].any() and cut.target[i, kept[-1]]  # context and 2 scored points
        assert (
            torch.equal(cut.obs[i, kept], b.obs[i, kept])
            and (cut.obs[i, ~cut.exists[i]] == 0).all()
        )
        assert torch.equal(cut.context[i], b.context[i, :U] & cut.exists[i])
        assert torch.equal(cut.target[i], b.target[i, :U] & cut.exists[i])
        assert torch.equal(cut.actions[i, : kept[-1]], b.actions[i, : kept[-1]])
        assert (cut.actions[i, kept[-1] :] == 0).all()  # nothing held after the last kept point
    # extrapolation's anchor is its last observed context point, often well before the scored
    # region: the horizon counts scored points, so every window keeps some
    assert (cut.target.sum(1) >= 2).all()
    assert whole == 0 if mode == "extrap" else whole > 0
    assert cut_horizon(b, 100) is b
    with pytest.raises(ValueError, match="horizon must be >= 1"):
        cut_horizon(b, 0)


def _loss_weights(eps, windows, context: int) -> dict[tuple[int, int], float]:
    """Each (episode, point)'s weight in an open-loop loss that averages over a window's
    targets (those after its ``context`` points), summed over ``windows``."""
    weights: dict[tuple[int, int], float] = {}
    for w in windows:
        first = w.start + min(context, w.stop - w.start - 1)
        for j in range(first, w.stop):
            weights[w.episode, j] = weights.get((w.episode, j), 0.0) + 1 / (w.stop - first)
    return weights


def test_windows_cut_at_an_episodes_end_score_its_last_points_as_often_as_the_rest():
    eps = linear_dataset(4, 30, seed=1).episodes
    n = len(eps[0].obs)
    assert all(len(e.obs) == n for e in eps)
    whole = sample_windows(eps, 40_000, 10, np.random.default_rng(0))
    cut = sample_windows(eps, 40_000, 10, np.random.default_rng(0), shortest=6)  # context 5
    assert all(w.stop - w.start == 10 for w in whole)
    assert {w.stop - w.start for w in cut} == {6, 7, 8, 9, 10}
    assert all(w.stop <= n for w in cut)
    for windows, ratio in ((whole, 1 / 5), (cut, 1.0)):
        weights = _loss_weights(eps, windows, 5)
        # a point past the first window and the last point: 5 whole windows score the mid
        # one (starts 5-9 before it), 1 the last with whole windows only; cut windows are
        # drawn by their targets, so the last point weighs as much as the mid one
        last = sum(weights.get((e, n - 1), 0) for e in range(len(eps)))
        mid = sum(weights.get((e, n // 2), 0) for e in range(len(eps)))
        assert last / mid == pytest.approx(ratio, rel=0.05)
    # an episode shorter than the shortest window is one window, as before
    short = sample_windows(eps, 5, 40, np.random.default_rng(0), shortest=n + 1)
    assert all((w.start, w.stop) == (0, n) for w in short)
    with pytest.raises(ValueError, match="shortest window must be in"):
        sample_windows(eps, 5, 10, np.random.default_rng(0), shortest=11)


def test_whole_windows_are_drawn_as_they_always_were():
    """The default draw is the committed runs' stream: the same rng calls, the same windows."""
    eps = linear_dataset(6, 20, seed=2).episodes + linear_dataset(3, 6, seed=3).episodes
    lens = np.array([len(e.obs) for e in eps])
    rng = np.random.default_rng(7)
    weights = np.maximum(lens - 10, 0) + 1
    picked = rng.choice(len(eps), size=50, p=weights / weights.sum())
    starts = (rng.random(50) * weights[picked]).astype(int)
    got = sample_windows(eps, 50, 10, np.random.default_rng(7))
    assert [(w.episode, w.start) for w in got] == list(zip(picked.tolist(), starts.tolist()))
