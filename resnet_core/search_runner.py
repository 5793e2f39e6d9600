"""A random or tpe sweep's supervisor: a :class:`~resnet_core.sweep_runner.Sweep` whose
points are trials asked from its Optuna study one by one (ask and tell), run by the same
executors as a grid's points.

Each poll it reads the new epoch rows of its running trials' metrics.jsonl and reports
each epoch's metric (sweep_search.epoch_metric) to the trial; when the pruner says so, the
trainer is stopped as the dashboard's Stop does (runs.signal_trainer: SIGTERM, the trainer
finishes its step, saves last.pt and ends ``stopped``) and the point is recorded
``pruned``. An ended trial is told its objective (completed), pruned, or failed; one that a
stop of the sweep interrupted stays running in the study until a ``--resume`` asks it again.
"""

from __future__ import annotations

import signal
from pathlib import Path

from optuna.trial import TrialState

from . import runs, sweep_search
from .runs.values import as_count
from .sweep_runner import Sweep


class SearchSweep(Sweep):
    """The sweep process of a search: its record's points grow by one per trial asked."""

    def __init__(self, runs_dir: Path, record: dict, executor=None, create: bool = False):
        super().__init__(runs_dir, record, executor)
        self.search = record["search"]
        self.space = sweep_search.space_of(record)
        self.study = sweep_search.load_study(self.search, create)
        self.trials = {}  # point -> its optuna.Trial while this process runs it
        self.cursors: dict[int, runs.MetricsCursor | None] = {}  # point -> where its metrics were read to
        self.reported: dict[int, int] = {}  # point -> the last epoch its trial was told

    def more(self) -> bool:
        return not self.stop and len(self.record["points"]) < self.search["trials"]

    def ask(self) -> tuple[int, str]:
        """The study's next trial as a new point, recorded before its trainer starts."""
        trial, values = sweep_search.ask(self.study, self.space)
        self.record["points"].append({"values": values, "run": None, "trial": trial.number, "pruned": False})
        i = len(self.record["points"]) - 1
        self.trials[i] = trial
        self.save()
        return i, "launch"

    def start(self, i: int, action: str):
        """Start (or wait on) point i's trainer, its trial naming the run folder from now on: told
        only at the end, a live search's running trial had no run for the views to open."""
        trainer = super().start(i, action)
        if i in self.trials and self.record["points"][i]["run"]:
            self.trials[i].set_user_attr("run", self.record["points"][i]["run"])
        return trainer

    def run_name(self, i: int) -> str:
        """NAME-trial3: sampled values make long names that tell nothing at a glance."""
        return runs.safe_name(f"{runs.safe_name(self.name, max_len=36)}-trial{self.record['points'][i]['trial']}")

    def work(self) -> list[tuple[int, str]]:
        """The grid's work less pruned trials, each asked again of the study (its trial from
        a sweep process that ended is failed and enqueued anew with the same values);
        a trial whose run ended while no sweep watched is told now; a trial the study
        still runs that no point names (asked just before a kill) is failed."""
        points = self.record["points"]
        todo = [(i, action) for i, action in super().work() if not points[i].get("pruned")]
        running = sweep_search.running_trials(self.study)
        for i, point in enumerate(points):
            if point["trial"] in running and i not in dict(todo):
                self.tell(i, point, runs.read_run(self.run_dir(i)))
        for i, _ in todo:
            if points[i]["trial"] in running:  # failed here, once: the point takes a new number
                self.study.tell(points[i]["trial"], state=TrialState.FAIL)
                running.discard(points[i]["trial"])
            self.trials[i], _ = sweep_search.ask(self.study, self.space, points[i]["values"])
            points[i]["trial"] = self.trials[i].number
        for number in running - {p["trial"] for p in points}:
            self.study.tell(number, state=TrialState.FAIL)
        self.save()
        return todo

    def watch(self, i: int) -> None:
        """Report point i's new epoch rows to its trial; stop its trainer if pruned."""
        run_dir = self.run_dir(i)
        if run_dir is None or i not in self.trials or self.record["points"][i].get("pruned"):
            return
        rows, self.cursors[i], _ = runs.read_metrics_since(run_dir, self.cursors.get(i))
        trial, told = self.trials[i], self.reported.get(i, 0)
        for row in rows:
            value = sweep_search.epoch_metric(row) if row.get("type") == "epoch" else None
            if value is not None and row["epoch"] > self.reported.get(i, 0):
                trial.report(value, row["epoch"])
                self.reported[i] = row["epoch"]
        info = runs.read_run(run_dir) if self.reported.get(i, 0) > told else None
        # After its last epoch a trial has trained all it will: stopping it would save only its
        # test evaluation and lose its result (measured: asha pruned a 3-epoch trial at epoch 3).
        if info is None or self.reported[i] >= (as_count(info.train_config.get("epochs")) or 0) or \
                not trial.should_prune():
            return
        proc = self.trainers.get(i)
        if not runs.signal_trainer(info.status) and proc is not None:
            proc.send_signal(signal.SIGTERM)  # a trainer of another machine (Ray): its task passes it on
        self.record["points"][i]["pruned"] = True
        self.save()
        self.progress(f"pruned trial {trial.number} at epoch {self.reported[i]}")

    def ended(self, i: int) -> str:
        state = super().ended(i)
        self.tell(i, self.record["points"][i], runs.read_run(self.run_dir(i)))
        return "pruned" if self.record["points"][i].get("pruned") else state

    def tell(self, i: int, point: dict, info: runs.RunInfo | None) -> None:
        """Tell the study how point i's trial ended: its objective once completed, pruned,
        failed; a stopped (not pruned) one is left running for a resume to ask again."""
        number, trial = point["trial"], self.trials.pop(i, None)
        state = info.state if info is not None else runs.FAILED_TO_START
        if point.get("pruned"):
            self.study.tell(number, state=TrialState.PRUNED, skip_if_finished=True)
        elif state == "completed":
            value, metric = sweep_search.objective(info.status, self.search["objective"])
            point.update(value=value, metric=metric)
            if trial is not None:
                trial.set_user_attr("metric", metric)
            self.study.tell(number, value, state=TrialState.COMPLETE if value is not None else TrialState.FAIL,
                            skip_if_finished=True)
        elif state != "stopped":
            self.study.tell(number, state=TrialState.FAIL, skip_if_finished=True)
        self.save()

    def devices(self) -> list[str]:
        return list(self.space.get("device", [self.base_device]))

    def finish(self) -> int:
        code = super().finish()
        done = [p for p in self.record["points"] if p.get("value") is not None]
        if done:
            best = max(done, key=lambda p: p["value"])
            print(f"[{self.name}] best: {best['metric']} {best['value']:.4f} (trial {best['trial']}, {best['run']})",
                  flush=True)
        return code
