"""RowStreams: per-row noise that a batch of rows draws exactly as rows drawn one at a time."""

import numpy as np
import pytest
import torch

from worldmodel.models.base import RowStreams, randn_rows

LIKE = torch.zeros(1)
DEVICES = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def gens(seeds):
    return [torch.Generator().manual_seed(s) for s in seeds]


@pytest.mark.parametrize("device", DEVICES)
def test_a_batch_draws_what_single_rows_draw(device):
    like = torch.zeros(1, device=device)
    seeds, widths = [3, 7, 11, 19], [5, 12, 1, 2, 40, 12, 3, 9]  # 40 > block: straight
    batch = RowStreams(gens(seeds), block=16)
    singles = [RowStreams(gens([s]), block=16) for s in seeds]
    for k, w in enumerate(widths):
        if k == 3:  # row 2 resets mid-stream: it then draws as a fresh stream of its new seed
            batch.reseed(2, torch.Generator().manual_seed(99))
            singles[2] = RowStreams(gens([99]), block=16)
        if k == 6:  # only rows 1 and 3 draw (an autoreset's encode)
            got = randn_rows((2, 2, w), batch.rows([1, 3]), like=like)  # (lead, rows, D)
            for j, i in enumerate([1, 3]):
                want = randn_rows((2, 1, w), singles[i], like=like)[:, 0]
                torch.testing.assert_close(got[:, j], want, rtol=0, atol=0)
            continue
        got = randn_rows((len(seeds), w), batch, like=like)
        for i, single in enumerate(singles):
            torch.testing.assert_close(got[i], single.draw(w, like)[0], rtol=0, atol=0)


def test_a_row_depends_on_its_own_generator_only():
    a = RowStreams(gens([1, 2, 3]), block=8).draw(20, LIKE)
    b = RowStreams(gens([1, 5, 3]), block=8).draw(20, LIKE)
    assert torch.equal(a[[0, 2]], b[[0, 2]]) and not torch.equal(a[1], b[1])


def test_draws_are_standard_normal_and_blocks_do_not_repeat():
    streams = RowStreams(gens(range(64)), block=128)
    x = torch.cat([streams.draw(6, LIKE) for _ in range(100)], 1).double()  # (64, 600)
    assert abs(x.mean()) < 0.02 and abs(x.std() - 1) < 0.02
    assert not torch.isclose(x[:, :126], x[:, 126:252]).any()  # 21 draws of 6 per block: refilled
    assert np.corrcoef(x[0, :-1].numpy(), x[0, 1:].numpy())[0, 1] < 0.1


def test_wrong_row_count_and_block_are_refused():
    with pytest.raises(ValueError, match="2 generators for 3 rows"):
        randn_rows((3, 4), RowStreams(gens([1, 2])), like=LIKE)
    with pytest.raises(ValueError, match="block"):
        RowStreams(gens([1]), block=0)


def test_one_generator_draws_where_it_lives():
    """ModelPredictor and MPC seed one CPU generator; its draws are made on the CPU and moved
    to the model's device (torch refuses a CPU generator in a CUDA randn: checked on an H100,
    where compare_to_simulator failed before), so a model draws the same on any device."""
    like = torch.empty(0, dtype=torch.float64)
    out = randn_rows((2, 3), torch.Generator().manual_seed(0), like=like)
    want = torch.randn((2, 3), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert out.dtype == torch.float64 and torch.equal(out, want)
