"""design simulate draws each trial's rollout order, as the trial will (issue 17)."""

from __future__ import annotations

from trialvault.design.simulate import with_drawn_order
from trialvault.study.model import StudyFile


def _order(study: StudyFile) -> list[tuple[int, str]]:
    return [(r.la, r.step_date.isoformat()) for r in study.design.rollout]


def test_a_drawn_order_gives_the_same_step_dates_to_the_las_in_another_order(
        nwd_study: StudyFile) -> None:
    drawn = {tuple(_order(with_drawn_order(nwd_study, seed))) for seed in range(40)}
    fixed = _order(nwd_study)
    for order in drawn:
        assert [la for la, _ in order] == [la for la, _ in fixed]
        assert sorted(d for _, d in order) == sorted(d for _, d in fixed)
    assert len(drawn) > 20  # 40 draws of 120 orderings: many distinct ones
    assert _order(with_drawn_order(nwd_study, 7)) == _order(with_drawn_order(nwd_study, 7))
