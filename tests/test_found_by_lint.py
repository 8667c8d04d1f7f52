"""Faults the linters and the type checker found (each failed on the code before its fix)."""

import pytest

from synthroom.room import NotFound, Room
from synthroom.room.training import run_training


def test_running_a_training_that_cannot_be_claimed_answers_its_view_or_not_found(tmp_path):
    # run_training called a helper it never imported (NameError) whenever the claim failed
    room = Room(f"sqlite:///{tmp_path / 'room.db'}", tmp_path / "artifacts", admin_key="k")
    with pytest.raises(NotFound, match="^no model with id 999$"):
        run_training(room, 999)
