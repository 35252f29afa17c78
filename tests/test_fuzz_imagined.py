"""Fuzzing the imagined envs' inputs (Hypothesis): actions, dts and reset options that are huge,
tiny, NaN, inf, of the wrong shape or of the wrong type.

Each call either raises ``ValueError``/``TypeError`` whose message names what was wrong, or
returns finite observations and rewards; either way the env keeps working afterwards. The envs
wrap a tiny, barely trained model (the ``tiny_run`` fixture, as in ``tests/test_imagined.py``).
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from envs.imagined import ImaginedEnv, ImaginedVectorEnv

FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
NUM_ENVS = 3

_odd_floats = st.sampled_from(
    [np.nan, np.inf, -np.inf, 1e308, -1e308, 5e-324, -5e-324, 0.0, -0.0, 1e-12, 1e12, 3e38]
)
_scalars = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    _odd_floats,
    st.integers(-(2**70), 2**70),
    st.booleans(),
    st.complex_numbers(max_magnitude=1e10),
)
_junk = st.one_of(
    st.none(),
    st.text(max_size=6),
    st.binary(max_size=6),
    st.just({"a": 1}),
    st.just(object()),
    st.just([1.0, "a", None]),
    st.just([[0.1, 0.2], [0.3]]),
    st.just(slice(1)),
    st.just(Ellipsis),
)
_dtypes = st.sampled_from(
    [
        np.float64,
        np.float32,
        np.float16,
        np.int64,
        np.int8,
        np.uint8,
        np.bool_,
        np.complex128,
        np.dtype("U3"),
        np.dtype("datetime64[s]"),
    ]
)


def _arrays(shapes):
    return hnp.arrays(
        _dtypes, st.sampled_from(shapes), elements=None, fill=st.nothing()
    ) | hnp.arrays(np.float64, st.sampled_from(shapes), elements=_odd_floats | st.floats())


def _actions(n: int | None):
    """Actions for one env (``n`` None) or ``n`` envs: mostly the right shape, some not."""
    good = (3,) if n is None else (n, 3)
    shapes = [good, good, good, (), (2,), (4,), (1, 3), (3, 1), (0,), (2, 3), (n or 1, 3, 1)]
    lists = st.lists(_scalars, min_size=3, max_size=3)
    finite32 = st.floats(allow_nan=False, allow_infinity=False, width=32)
    right_shape = hnp.arrays(
        np.float64, good, elements=finite32 | _odd_floats.filter(np.isfinite)
    ) | hnp.arrays(np.float32, good, elements=finite32)
    return st.one_of(
        right_shape,
        right_shape,
        _arrays(shapes),
        _junk,
        _scalars,
        lists if n is None else st.just([]),
    )


_dts = st.one_of(
    st.floats(5e-324, 1.0),
    st.floats(5e-324, 1.0),
    st.floats(5e-324, 1e308),
    _scalars,
    _junk,
    st.floats(1e-6, 0.1),
    hnp.arrays(np.float64, st.sampled_from([(), (1,), (2,), (0,)]), elements=st.floats(0, 1)),
    st.sampled_from(["0.01", np.float32(0.008), np.int64(1), 10**400]),
)


def _check_error(err: Exception, *names: str) -> None:
    assert isinstance(err, (ValueError, TypeError)), f"{type(err).__name__}: {err}"
    msg = str(err)
    assert any(n in msg for n in names), f"{type(err).__name__} does not name {names}: {msg}"


def _check_single(out) -> None:
    obs, r, term, trunc, info = out
    assert obs.shape == (11,) and obs.dtype == np.float64 and np.isfinite(obs).all(), obs
    assert isinstance(r, float) and np.isfinite(r), r
    assert isinstance(term, bool) and isinstance(trunc, bool)


def _still_works(env) -> None:
    env.reset(seed=0)
    _check_single(env.step(np.zeros(3)))


@pytest.fixture(scope="module", params=["latent-ode", "mlp-ensemble"])
def env(request, tiny_run):
    e = ImaginedEnv(tiny_run(request.param))
    e.reset(seed=0)
    yield e
    e.close()


@pytest.fixture(scope="module", params=["latent-ode", "mlp-ensemble"])
def venv(request, tiny_run):
    e = ImaginedVectorEnv(tiny_run(request.param), num_envs=NUM_ENVS)
    e.reset(seed=0)
    yield e
    e.close()


def _call(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy's casting warnings for odd inputs
        return fn(*args, **kwargs)


@FUZZ
@given(action=_actions(None))
def test_step_refuses_or_stays_finite(env, action):
    env.reset(seed=0)
    try:
        out = _call(env.step, action)
    except Exception as err:  # noqa: BLE001 - the property is about which exceptions escape
        _check_error(err, "action")
        event("refused")
    else:
        _check_single(out)
        event("stepped")
    _still_works(env)


@FUZZ
@given(action=_actions(None), dt=_dts)
def test_step_dt_refuses_or_stays_finite(env, action, dt):
    env.reset(seed=0)
    try:
        out = _call(env.step_dt, action, dt)
    except Exception as err:  # noqa: BLE001
        _check_error(err, "action", "dt")
        event("refused")
    else:
        _check_single(out)
        assert np.isfinite(out[4]["dt"]) and out[4]["dt"] > 0
        event("stepped")
    _still_works(env)


@FUZZ
@given(actions=_actions(NUM_ENVS))
def test_vector_step_refuses_or_stays_finite(venv, actions):
    venv.reset(seed=0)
    try:
        obs, r, term, trunc, info = _call(venv.step, actions)
    except Exception as err:  # noqa: BLE001
        _check_error(err, "action")
        event("refused")
    else:
        assert obs.shape == (NUM_ENVS, 11) and np.isfinite(obs).all()
        assert r.shape == (NUM_ENVS,) and np.isfinite(r).all()
        assert term.dtype == bool and trunc.dtype == bool
        event("stepped")
    venv.reset(seed=0)
    assert np.isfinite(venv.step(np.zeros((NUM_ENVS, 3)))[0]).all()


def _maybe(value):
    return st.one_of(st.just(value), _junk, _scalars, _arrays([(), (2,), (3, 11), (0,)]))


@st.composite
def _options(draw):
    """``reset(options=...)``: a real-looking context window, then some of it broken."""
    T = draw(st.integers(0, 4))
    t = np.arange(T) * 0.008 + draw(st.sampled_from([0.0, 1.0, 1e12]))
    obs = draw(hnp.arrays(np.float64, (T, 11), elements=st.floats(-2, 2)))
    actions = draw(hnp.arrays(np.float64, (max(T - 1, 0), 3), elements=st.floats(-1, 1)))
    context = {"t": t, "obs": obs, "actions": actions}
    for key in draw(st.sets(st.sampled_from(["t", "obs", "actions"]))):
        arr = context[key].copy()
        how = draw(st.sampled_from(["odd", "drop", "shape", "junk", "list", "reverse"]))
        if how == "odd" and arr.size:
            arr.reshape(-1)[draw(st.integers(0, arr.size - 1))] = draw(_odd_floats)
            context[key] = arr
        elif how == "drop":
            del context[key]
        elif how == "shape":
            context[key] = draw(_arrays([(), (T,), (T, 10), (T + 1, 11), (T, 3), (T, 2)]))
        elif how == "junk":
            context[key] = draw(_junk)
        elif how == "list":
            context[key] = arr.tolist()
        else:
            context[key] = arr[::-1]
    options = {"context": context}
    if draw(st.booleans()):
        options["x"] = draw(_maybe(0.5))
    return draw(
        st.one_of(
            st.just(options),
            st.just(options),
            st.just({"context": draw(_junk | _scalars)}),
            _junk,
            st.just(["context"]),
            st.just({}),
        )
    )


@FUZZ
@given(options=_options())
def test_reset_options_refused_or_finite(env, options):
    try:
        obs, info = _call(env.reset, seed=0, options=options)
    except Exception as err:  # noqa: BLE001
        _check_error(err, "context", "options", "x", "observations", "times span")
        event("refused")
    else:
        assert obs.shape == (11,) and obs.dtype == np.float64 and np.isfinite(obs).all()
        assert np.isfinite(info["t"])
        _check_single(env.step(np.zeros(3)))
        event("reset")
    _still_works(env)


def test_found_by_fuzzing(env, venv):
    """Inputs the fuzzers above found escaping as bare numpy/builtin errors (or, for a 1e12 s
    gap in a context, wrapping around the batcher's 1 ns int64 grid into ``np.repeat``'s
    "repeats may not contain negative values")."""
    obs = np.zeros((2, 11))
    cases = [
        (lambda: env.step(""), TypeError, "action"),
        (lambda: env.step([[0.1, 0.2], [0.3]]), TypeError, "action"),
        (lambda: env.step(object()), TypeError, "action"),
        (lambda: env.step(np.zeros(3, dtype=complex)), TypeError, "action"),
        (lambda: env.step_dt(np.zeros(3), ""), TypeError, "dt"),
        (lambda: env.step_dt(np.zeros(3), None), TypeError, "dt"),
        (lambda: env.step_dt(np.zeros(3), np.array([0.1, 0.2])), TypeError, "dt"),
        (lambda: env.step_dt(np.zeros(3), 10**400), TypeError, "dt"),
        # a latent-ode with RK4 steps of at most the control step took 49 s for dt = 1000,
        # ran out of memory for 1e5 and raised torch's "repeats can not be negative" for 1e308
        (lambda: env.step_dt(np.zeros(3), 1e308), ValueError, "dt must be at most 8 s"),
        (lambda: env.step_dt(np.zeros(3), 1e5), ValueError, "dt must be at most 8 s"),
        (lambda: venv.step([[1.0, "a", None]] * NUM_ENVS), TypeError, "action"),
        (lambda: env.reset(options=["context"]), TypeError, "options"),
        (lambda: env.reset(options=b"context"), TypeError, "options"),
        (lambda: env.reset(options={"context": "t"}), TypeError, "options['context']"),
        (lambda: env.reset(options={"context": {"t": [""], "obs": obs}}), TypeError, "'t'"),
        (lambda: env.reset(options={"x": "a"}), ValueError, "options['x']"),
        (
            lambda: env.reset(
                options={"context": {"t": [0, 1e12], "obs": obs, "actions": np.zeros((1, 3))}}
            ),
            ValueError,
            "times span",
        ),
    ]
    for call, error, words in cases:
        with pytest.raises(error, match=re.escape(words)):
            _call(call)
