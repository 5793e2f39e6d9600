"""The state the dashboard shows for a run, and how: "resuming…" between a click on Resume
and the resumed trainer's first write (:func:`shown_state`), whether a resume this session
launched was refused (:func:`resume_refused`), and each state's badge colour, icon and help.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

from .. import runs
from ..runs.values import as_float

# The Monitor's state of a run between a click on Resume and the resumed trainer's first
# write to status.json (about 3 s, importing torch): the folder still says "stopped" then,
# and showing that, with the Resume button, invited a second click.
RESUMING = "resuming…"
# A search's trial its pruner stopped: its folder says "stopped", as after a click on Stop;
# the sweep record knows which (runs.pruned_run_ids), and the issue asks every table to say so.
PRUNED = "pruned"


def with_pruned(infos: Sequence[runs.RunInfo], pruned: set[str]) -> list[runs.RunInfo]:
    """The runs, those a search pruned (and not resumed since) in state PRUNED."""
    return [dataclasses.replace(i, state=PRUNED) if i.state == "stopped" and i.run_id in pruned else i
            for i in infos]


def launched_here(pending: Mapping | None, run_id: str, resume: bool = False) -> bool:
    """Whether pending, the launch this session recorded (the page's train_pending), is of
    run_id (with resume: a resume of it)."""
    return bool(pending and pending.get("run_id") == run_id and (pending.get("resume") or not resume))


def shown_state(state: str, run_id: str, pending: Mapping | None, alive: bool) -> str:
    """The state the Monitor shows for a run: RESUMING while a trainer this session resumed
    (pending: the launch it recorded) runs and the folder still says how the run ended;
    the folder's state otherwise (the trainer wrote, or exited)."""
    resuming = launched_here(pending, run_id, resume=True) and alive and state in runs.RESUMABLE_STATES
    return RESUMING if resuming else state


def resume_refused(status: Mapping, run_id: str, pending: Mapping | None, alive: bool) -> bool:
    """Whether a resume this session launched (pending) ended without a word in the folder:
    its trainer has exited and status.json is older than the launch (a trainer that refuses
    the resume, a corrupt last.pt say, exits before it writes), so that the page says why
    (the trainer's last output line) instead of showing the old state as if nothing happened."""
    if not launched_here(pending, run_id, resume=True) or alive:
        return False
    updated, launched = as_float(status.get("updated_at")), as_float(pending.get("t"))
    return launched is not None and (updated is None or updated < launched)


STATE_COLOURS = {
    "queued": "gray", "running": "blue", "completed": "green", "stopped": "orange",
    "failed": "red", "diverged": "red", runs.CRASHED: "red", runs.FAILED_TO_START: "red", runs.UNREADABLE: "violet",
    RESUMING: "blue", PRUNED: "gray",
}
STATE_ICONS = {
    "queued": ":material/hourglass_empty:", "running": ":material/play_circle:",
    "completed": ":material/check_circle:", "stopped": ":material/stop_circle:",
    "failed": ":material/error:", "diverged": ":material/trending_up:", runs.CRASHED: ":material/dangerous:",
    runs.FAILED_TO_START: ":material/cancel:", runs.UNREADABLE: ":material/broken_image:",
    RESUMING: ":material/hourglass_top:", PRUNED: ":material/content_cut:",
}
STATE_HELP = {
    "queued": "waiting for the device: another run holds it",
    "running": "training",
    "completed": "finished all epochs and the test evaluation",
    "stopped": "stopped on request; resume continues from the last step",
    "failed": "the trainer raised an error",
    "diverged": "the loss became NaN or infinite; training stopped",
    runs.CRASHED: "the trainer process disappeared (killed or out of memory); resume continues from the last epoch",
    runs.FAILED_TO_START: "the trainer exited before it wrote the run's config (its last output says why); "
                          "launch it again",
    runs.UNREADABLE: "the run folder's files cannot be read as the format says (see the run's problem)",
    RESUMING: "the trainer is starting again from last.pt",
    PRUNED: "its search's pruner stopped it at an epoch's end, behind the other trials; resume continues it",
}

