"""The format of a sweep's files in ``<runs-dir>/.sweeps/``: the record, its lock, the
log of a sweep the dashboard launched and a search's Optuna study. Like
resnet_core/runs/folder_format.py for run folders, this docstring is its only definition.

``<runs-dir>/.sweeps/<name>.json`` (a dot folder, so run listings skip it; never a symbolic
link, which no sweep writes through), written only
by the sweep process (``python -m resnet_core.sweep``) that holds an exclusive flock on
``<name>.lock`` beside it (a file that exists while a sweep process holds it: removed,
still held, when the claim ends, a refused one's too), replaced atomically on every
change: ``format_version`` (1, SWEEP_FORMAT_VERSION, independent of the run folders'),
``name``, ``argv`` (the trainer
flags every run gets, data folder absolute), ``vary`` (``[{"field", "values"}]`` in grid
order: the first field varies slowest), ``parallel`` (runs alive at once),
``device_slots`` (each run's ``--device-slots``), ``points`` (``[{"values": {field:
value}, "run": <run-id> | null}]``, one per combination in grid order; ``run`` is set
before that point's trainer starts, so a crash never loses a run; ``start_failure``, added
within version 1 (missing: null): the one line, at most 500 characters, why the trainer of
``run`` ended before writing status.json or config.json (its console.log's last line),
written by the sweep once that trainer ended and removed when the point is launched
again), ``state``
(``running``, ``completed``, ``failed`` (a run did not complete), ``stopped``), ``pid``,
``pid_start`` (the sweep process, as in status.json), ``created_at``, ``finished_at``,
and where its trainers run (added within version 1; a record without them reads as
``local``): ``executor`` (``local``: children of the sweep process, each taking a device
lock; ``ray``: each in a Ray task, with ``--no-device-lock``), ``address`` (the Ray
cluster joined, ``HOST:PORT``; null: a Ray the sweep process started for itself, and
always null for ``local``) and ``cpus_per_trial`` (CPUs a Ray trial without a GPU asks
for; null for ``local``). A ``--resume`` runs the recorded executor unless it is given
another, and records the one it runs. A Ray sweep's ``device_slots`` equals its
``parallel`` and matters only to a resume with ``--executor local``. On Ray the runs
folder is one every node mounts (NFS or similar). A point whose run folder the sweep
removed again, empty (a Ray task cancelled before it started), is back to ``run`` null.
Each point's run is an ordinary run folder whose config records ``sweep`` = name; its
state is that folder's; a point whose run folder holds neither status.json nor config.json
(no run yet for :func:`read_run`) is ``starting`` while the sweep process runs and has
recorded no ``start_failure``, else ``failed to start``.
:func:`read_sweep` derives ``crashed`` for a ``running`` record whose process is gone, and
``unreadable`` (with a one-line ``problem``, see :func:`resnet_core.runs.sweep_checks.record_problem`)
for a record that is not this format: a point's values are exactly vary's grid (a search's:
one of each field of vary and ranges, within them), of known
training options that can be varied, each of its type and in range (integers within
2**53, floats finite); argv parses as training options; counts, pids and times are in
range. It never raises, and an unreadable sweep is neither reported nor resumed.
``<name>.log`` holds the output of a sweep the dashboard launched.

A search (``--search random`` or ``tpe``; added within version 1: a record without
``search`` is a grid, as every record before it) also holds ``search``: ``kind``
(``random`` or ``tpe``: Optuna's RandomSampler or TPESampler), ``trials`` (the budget of
runs), ``seed`` (the sampler's: the ``--seed`` every run also trains with, 0 unless given),
``objective`` (``best_val_acc`` or ``test_acc``: the status.json field of a completed run
that is maximised; a run without a validation split gives its final ``test_acc`` for
``best_val_acc``), ``prune`` (``none``, ``asha``: SuccessiveHalvingPruner with
min_resource 1 and reduction factor 3, or ``median``: MedianPruner judging from 2
finished trials on; fed each epoch row's ``val_acc``, else its ``test_acc``), ``storage``
(the Optuna RDB storage URL, a SQLite file's path absolute; by default
``sqlite:///<runs-dir>/.sweeps/<name>.optuna.db``)
and ``study`` (the study's name there: the sweep's); and ``ranges``
(``[{"field", "low", "high", "log"}]``: numeric options sampled uniformly, or
log-uniformly with ``log``, between the bounds; an integer option as integers). Its
``vary`` lists are categorical choices, and its ``points`` are its trials in the order
asked (at most ``trials``; none before the first), each recorded with ``trial`` (its
Optuna trial number) before its trainer starts, ``pruned`` (true once the pruner stopped
it: its run folder ends ``stopped`` as after Stop, and the point reads ``pruned``,
counted done and never resumed; the Runs page shows such a run pruned, from
:func:`pruned_run_ids`) and, once completed, ``value`` and ``metric`` (the
objective the study was told and the status.json field it came from). The run of a
search's point is named ``<name>-trial<N>``.

The study's database holds Optuna's own tables: each trial's params, state (RUNNING,
COMPLETE, PRUNED, FAIL), value, intermediate values by epoch, and the user attributes
``run`` (its run folder) and ``metric``. SQLite commits every change, so a kill -9 of the
sweep loses no trial it told. A ``--resume`` tells a trial whose run ended while no sweep
watched, fails the trials a dead sweep left RUNNING and asks each unfinished point again
with its values (a new trial number, the same run folder, resumed), then asks the rest of
the budget; a trial stopped with the sweep (not pruned) stays RUNNING until then.
"""
