import pytest
import torch

from resnet_core.schedule import Schedule


def test_multistep_divides_by_ten_at_the_milestones():
    s = Schedule("multistep", 0.1, 64_000, milestones=(32_000, 48_000))
    assert s.lr(0) == 0.1 and s.lr(31_999) == 0.1
    assert s.lr(32_000) == pytest.approx(0.01) and s.lr(48_000) == pytest.approx(0.001)


def test_constant_warmup_is_the_papers_resnet110_start():
    s = Schedule("multistep", 0.1, 64_000, milestones=(32_000, 48_000), warmup_steps=400, warmup="constant")
    assert s.lr(0) == pytest.approx(0.01) and s.lr(399) == pytest.approx(0.01) and s.lr(400) == 0.1


def test_linear_warmup_then_cosine_to_zero():
    s = Schedule("cosine", 0.2, 110, warmup_steps=10)
    assert s.lr(0) == pytest.approx(0.02) and s.lr(9) == pytest.approx(0.2)
    assert s.lr(10) == pytest.approx(0.2) and s.lr(60) == pytest.approx(0.1) and s.lr(110) == pytest.approx(0)


def test_onecycle_matches_torch():
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    total = 100
    ref = torch.optim.lr_scheduler.OneCycleLR(opt, 0.1, total_steps=total)
    ours = Schedule("onecycle", 0.1, total)
    for step in range(total):
        group = opt.param_groups[0]
        assert ours.lr(step) == pytest.approx(group["lr"], rel=1e-9, abs=1e-12), step
        assert ours.momentum(step) == pytest.approx(group["momentum"], rel=1e-9), step
        opt.step()
        ref.step()


def test_unknown_schedule_is_refused():
    with pytest.raises(ValueError, match="multistep, cosine, onecycle"):
        Schedule("step", 0.1, 10)
