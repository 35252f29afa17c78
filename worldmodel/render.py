"""Side-by-side video of an evaluation: real | observed points | imagined, rendered off-screen by
MuJoCo (set ``MUJOCO_GL=egl`` on a machine without a display), written as GIF and MP4.

The imagined panel draws each model's predicted observation as a physics state
(``qpos = [x, obs[:nq-1]]``, ``qvel = obs[nq-1:]``) with ``x`` integrated from the predicted x
velocity, starting from the real x. The observed panel shows the real frame at each context
point, then holds the last observed frame, greyed out, while the model runs open loop.
"""

from __future__ import annotations

import os
from pathlib import Path

import gymnasium as gym
import imageio.v2 as imageio
import numpy as np
from PIL import Image, ImageDraw

from envs.mujoco_state import state_from_obs
from envs.wrappers import set_physics_state
from worldmodel.evaluate import HorizonResult


class FrameRenderer:
    """Renders MuJoCo states of one env to RGB arrays ``(size, size, 3)``."""

    def __init__(self, env_id: str, size: int = 160) -> None:
        os.environ.setdefault("MUJOCO_GL", "egl")
        self.env = gym.make(env_id, render_mode="rgb_array", width=size, height=size).unwrapped
        self.env.reset(seed=0)
        self.nq, self.nv = int(self.env.model.nq), int(self.env.model.nv)

    def frame(self, qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
        set_physics_state(self.env, qpos, qvel)
        return np.asarray(self.env.render()).copy()

    def from_obs(self, obs: np.ndarray, x: float) -> np.ndarray:
        """The frame of an observation ``qpos[1:] ++ qvel`` at x position ``x`` [m]."""
        return self.frame(*state_from_obs(obs, [x], self.nq, self.nv))

    def close(self) -> None:
        self.env.close()


def _caption(frame: np.ndarray, text: str) -> np.ndarray:
    img = Image.fromarray(frame)
    ImageDraw.Draw(img).text(
        (4, 3), text, fill=(255, 255, 255), stroke_width=2, stroke_fill=(0, 0, 0)
    )
    return np.asarray(img)


def evaluation_frames(
    result: HorizonResult, model: str, start: int = 0, size: int = 160
) -> list[np.ndarray]:
    """Frames ``(size, 3 * size, 3)``: the context phase, then the open-loop horizon."""
    r = FrameRenderer(result.settings["env_id"], size)
    try:
        s = result.starts[start]
        x0 = float(s.qpos[0])
        frames = []
        for k in range(len(s.context.t)):
            real = r.frame(s.context_qpos[k], s.context_qvel[k])
            tcap = f"t={s.context.t[k]:+.3f}s"
            frames.append(
                np.concatenate(
                    [
                        _caption(real, f"real {tcap}"),
                        _caption(real, "observed"),
                        _caption(np.zeros_like(real), "(context)"),
                    ],
                    1,
                )
            )
        last_seen = (frames[-1][:, size : 2 * size] * 0.45).astype(np.uint8) if frames else None
        pred = result.predictions[model][start]
        vx = pred[:, r.nq - 1]
        xs = x0 + np.cumsum(vx * result.dts[start])
        t = np.cumsum(result.dts[start])
        for h in range(pred.shape[0]):
            real = r.frame(result.real_qpos[start, h], result.real_qvel[start, h])
            imag = r.from_obs(pred[h], float(xs[h]))
            cap = f"t={t[h]:+.3f}s h={h + 1}"
            frames.append(
                np.concatenate(
                    [
                        _caption(real, f"real {cap}"),
                        _caption(last_seen, "no observation"),
                        _caption(imag, f"{model}"),
                    ],
                    1,
                )
            )
        return frames
    finally:
        r.close()


def write_video(frames: list[np.ndarray], path: str | Path, fps: int = 15) -> list[Path]:
    """Write ``path`` with suffix ``.gif`` and ``.mp4`` (H.264 via imageio-ffmpeg); returns both."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    gif, mp4 = path.with_suffix(".gif"), path.with_suffix(".mp4")
    imageio.mimsave(gif, frames, duration=1000 / fps, loop=0)
    even = [
        f[: f.shape[0] // 2 * 2, : f.shape[1] // 2 * 2] for f in frames
    ]  # H.264 needs even sizes
    with imageio.get_writer(mp4, fps=fps, codec="libx264", quality=7, macro_block_size=1) as w:
        for f in even:
            w.append_data(f)
    return [gif, mp4]
