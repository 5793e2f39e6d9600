"""The run folder's format: the one contract between the trainer and everything that reads runs.

The trainer (``python -m resnet_core.train``; under torchrun its rank 0 alone, the
other ranks write nothing here) writes one folder per run and nothing else (but for the
stale temp files it removes, below); the dashboard launches trainers, sends them signals,
reads these folders and writes only its own files in them (features/, annotations.json).
This docstring is the format's only definition. Change it only together with FORMAT_VERSION.

Format version 2
================

Readers also read version 1 folders, which differ in one way that matters: there
``val_size`` 0 made the test set stand in for validation (``val_source`` ``"test"``,
``val`` predictions pointing into the test set, and ``best.pt`` chosen on it). The
trainer resumes only folders of its own version, so no folder mixes two.

``<runs-dir>/<run-id>/`` (run-id: ``YYYYmmdd-HHMMSS-<name>``, name sanitised by
:func:`safe_name`) holds:

``config.json``
    Written at the start, right after status.json, and completed once the data and
    model are known (sizes, classes, model); a resume keeps the original settings but
    those ``--resume`` may change (the resumable fields of resnet_core.config: the run's
    length, device, precision, memory format, compile, data folder, download and
    logging), which it applies to ``config`` and lists in ``resumed_with`` (added within
    version 2; absent where no resume changed a setting: one entry a resume that did,
    ``at`` (unix seconds), ``epoch`` and ``step`` of the checkpoint it continued from,
    ``changes``: field -> [old, new]):
    ``format_version``, ``run_id``, ``created``, ``config`` (every TrainConfig field
    actually used, presets and block-dependent defaults already applied; ``shortcut``
    ``"none"`` is a plain network; ``sweep`` names the sweep the run belongs to, ``""``
    for none, and reads as ``""`` in folders written before sweeps existed; ``image_size``
    and ``resize`` read as 32 and ``"crop"`` in folders written before them), ``resolved``
    (``device`` (the device the run took, indexed as ``cuda:2``; written once the run
    leaves the queue, so a queued run has none yet, a resumed one its previous session's),
    ``device_name``, ``precision`` (of training steps; evaluation is always
    fp32), ``channels_last``, ``compile``, ``world_size`` (the latest session's processes: 1,
    or torchrun's ranks; a resume may use another count; added within version 2, readers
    take a missing one for 1), ``nodes``
    (one entry a machine: ``host``, and ``devices`` and ``device_names`` of its ranks in
    rank order; ``device`` and ``device_name`` above are rank 0's), ``steps_per_epoch``, ``total_steps``,
    ``max_steps`` (0, or the step at which the run stops, mid-epoch if need be),
    ``train_size``, ``val_size``, ``test_size``, ``val_source`` = ``"train"`` (a split
    carved from the training set; val indices point into the training set) or null (no
    validation split), ``test_every_epoch`` (true exactly when there is no validation
    split: the test set is then evaluated after every epoch for monitoring only, never to
    choose a checkpoint), ``image_size`` (added within version 2, missing: 32: the side of
    the square images trained on, to which every reader brings an image before the model
    sees it, by ``config``'s ``resize`` rule), ``data_dir`` (absolute path of the data folder
    read; an image folder run's ROOT), ``normalization`` (``mean``, ``std``: per-channel
    fractions of 255, and ``images``: computed from exactly the training split's images)
    and, for an image folder run only (``config.dataset`` ``"folder"``; added within version
    2), ``folder`` (``test_source``: ``"folder"`` for ROOT/test/, ``"carved"`` for the share
    of each class held out by ``config``'s ``test_size`` and ``split_seed``, as
    resnet_core.folder_dataset.carve_test chooses it; ``skipped``: the first 100 images left
    out as unreadable under ``bad_images`` ``"skip"``, relative paths, and ``skipped_count``
    all of them; ``ignored``: files that are not images; ``problems``: the scan's one-line
    notes; ``from_cache``: whether the decoded images came from
    ``<runs-dir>/.cache/folders/``)), ``classes`` (class names, in label
    order), for CIFAR-100 runs ``superclasses`` (the 20 coarse names) and ``superclass_of``
    (each class's superclass index, in label order; the loader checks that every image's
    coarse label in the data files is superclass_of[its label], so this records each
    image's coarse label; both added within version 2, absent for CIFAR-10),
    ``model`` (name: ``ResNet-20`` or ``plain-20``, params, macs), ``versions`` (python, torch, torchvision, numpy,
    resnet_core) and, added within version 2 and only where given at launch, ``tags`` and ``note``
    (``--tag``, ``--note``: a list of tags and a text, checked as annotations.json's; no training option).

``status.json``
    Written before ``config.json`` exists, then replaced atomically (temp file +
    ``os.replace``) on every change of state, step row and epoch: ``format_version``,
    ``state``, ``pid``, ``pid_start`` (the trainer's start time as the kernel gives it:
    field 22 of ``/proc/<pid>/stat``, clock ticks since boot; null where unknown),
    ``epoch`` (completed epochs), ``step`` (optimizer steps taken),
    ``total_epochs``, ``total_steps``, ``created_at``, ``started_at``, ``updated_at``,
    ``finished_at`` (unix seconds or null; ``started_at`` is the latest session's),
    ``elapsed_before_s`` (seconds the earlier sessions of a resumed run took),
    ``best_val_acc`` and ``best_epoch`` (null without a validation split or before the
    first epoch), ``test_acc`` (of the final weights, after the final test evaluation)
    and ``error`` (message for ``failed`` and ``diverged``, else null). ``state`` is one
    of: ``queued`` (every candidate device's lock is held, see :func:`device_lock_path`),
    ``running``, ``completed``, ``stopped`` (SIGTERM/SIGINT: the current step finished
    and ``last.pt`` saved), ``failed`` (an exception), ``diverged`` (a non-finite loss).
    A reader that finds ``queued`` or ``running`` while that trainer is gone reports
    ``crashed`` (see :func:`read_run`): the trainer was killed; or ``failed to start``
    (FAILED_TO_START) where config.json was never written: the trainer died between its
    first status.json and its config. A folder with status.json but no config.json is a
    run (its config {}; ``unreadable`` unless its state is ``queued`` or ``running``);
    one with neither is a trainer starting (not a run yet), which :func:`list_runs`
    lists as failed to start once the folder and its console.log have been quiet for
    STALE_S (:func:`read_run` leaves it None: a sweep that launched into it judges it by
    its process). A failed-to-start run's :attr:`RunInfo.warning` holds the last line of
    its console.log (else train.log): why it died. ``host`` (added within
    version 2; a missing one means this machine) names the machine the trainer runs on;
    an active trainer rewrites status.json at least every 10 s (HEARTBEAT_S), so a reader on
    another machine, which cannot look up the pid, takes a trainer silent for 60 s
    (STALE_S) for gone, and never signals it. An ``updated_at`` more than HEARTBEAT_S ahead of
    the reader's clock is clock skew: that heartbeat is taken to be as old as status.json's
    mtime (or, where that is in the future too, as the time the reader first saw it), and
    the reader says so in :attr:`RunInfo.warning`. The pid is trusted only
    while a process with it runs, is no zombie and has the recorded ``pid_start``
    (without one, as in version 1: its command line runs ``resnet_core.train``), so a
    reused pid never makes a run look alive and Stop never signals another process.
    ``phase`` (added within version 2: readers take a missing one for unknown) says what
    an active trainer does now, one of PHASES: 'queued', 'loading data' (the splits onto
    the device), 'building model' (the model, then the session's first training step,
    torch.compile's warm-up included), 'training', 'validating', 'testing' (evaluations),
    'saving' (predictions and checkpoints); null once the run has ended.
    ``phase_started_at`` (unix seconds) is when it began; ``phase_done`` and
    ``phase_total`` count the images of an evaluation phase (updated at most
    every log_seconds of the config), else null. ``first_step_s``: seconds the
    session's first training step took, its batch, compiling and one device sync
    included (null before it), so that it is not mistaken for the steady speed.

``metrics.jsonl``
    One JSON object a line, appended and flushed as training goes. Step rows as
    steps go: ``{"type": "step", "epoch", "step", "loss", "acc", "lr", "images_per_s",
    "time"}`` where ``epoch`` is the 1-based epoch in progress and loss/acc average the
    steps since the previous step row; a row follows the session's first step, every
    ``log_every``-th step, any step that ends ``log_seconds`` or more after the previous
    row, and each epoch's last step. Epoch rows at the end of each epoch:
    ``{"type": "epoch", "epoch", "step", "train_loss", "train_acc", "val_loss",
    "val_acc", "lr", "epoch_seconds", "eval_seconds", "images_per_s", "peak_memory_mb",
    "time"}`` (``epoch_seconds``: its training steps; ``eval_seconds``: its evaluations,
    missing in rows written before it existed), with
    ``val_loss``/``val_acc`` null without a validation split and, when
    ``test_every_epoch``, also ``test_loss`` and ``test_acc`` (monitoring only).
    Accuracies are fractions in [0, 1]. A final ``{"type": "test", "epoch", "step",
    "test_loss", "test_acc", "time"}`` row follows the test evaluation of the final
    weights. System rows (added within version 2; readers skip types they do not
    know) every ``log_seconds`` (at least 2 s) from when the run has its device to
    the end (loading data, compiling, training, evaluating, saving):
    ``{"type": "system", "epoch", "step", "cpu_percent", "machine_cpu_percent",
    "cores", "ram_mb", "machine_ram_percent", "time"}`` and on a GPU ``"gpu_memory_mb"`` (what
    the process's allocator holds on CUDA, the driver's total on MPS), on CUDA also
    ``"gpu_util"`` (percent of time a kernel ran, null without NVML) and
    ``"gpu_memory_total_mb"``; ``epoch`` is the epoch in progress and ``step`` the
    steps taken; CPU percentages are since the previous row, of the ``cores`` the
    trainer may use (its own) and of all cores (the machine's); any figure that could not be
    read is null (see :mod:`resnet_core.usage`). In a distributed run every figure of
    the step, epoch and test rows is of all ranks together (losses and accuracies of the
    global batch, ``images_per_s`` in total), while system rows are rank 0's process and
    device.
    On resume the trainer truncates this file to the rows its checkpoint covers
    (step and system rows up to its step), so no row is duplicated.

``last.pt`` / ``best.pt``
    ``torch.save`` of a plain dict (loadable with ``weights_only=True``), written to a
    fresh temp file and renamed (a symlink at the name is replaced, never followed):
    ``format_version``, ``model``, ``optimizer`` and ``scaler`` state dicts,
    ``schedule`` (the step and the schedule's settings), ``rng`` (``torch``: the CPU
    generator; ``cuda``: the CUDA generators, or an empty list), ``epoch`` (completed
    epochs), ``step``, ``best_val_acc`` (-1.0 before any validation), ``best_epoch`` (0
    likewise), and ``partial_epoch`` (null, or for a graceful stop mid-epoch:
    ``{"epoch", "batch", "sums", "seconds", "dynamics"}`` (``dynamics``: see ``dynamics/``;
    missing in checkpoints written before it, whose resumed epoch records only its rest),
    the epoch's position and running sums; the data order and augmentation are recomputed
    from (seed, epoch, batch), so a resume continues exactly). ``last.pt`` is written after every epoch and on a
    graceful stop; ``best.pt`` (only with a validation split) right after ``last.pt``
    with the same bytes when the validation accuracy improves, so it always holds
    ``best_epoch``; a resume restores it from ``last.pt`` if a kill fell between the two.

``predictions/{split}_epoch_{NNN}.npz`` (epoch 1-based, three digits; readers list no file
whose epoch is 0 or past 2**53, runs.values.MAX_COUNT)
    ``split`` ``val`` after every epoch (with a validation split), ``test`` after every
    epoch when ``test_every_epoch`` and otherwise once at the end (the final weights):
    arrays ``indices`` (int64, index of each image in its source set, see
    ``val_source``), ``labels`` (int64), ``preds`` (int64), ``topk_classes`` (int64,
    N x k, best first), ``topk_probs`` (float32, N x k), ``loss`` (float32), all from
    fp32 evaluation. ``split`` ``train``: only ``confusion`` (int64, C x C, rows = the
    label trained on (after ``label_noise``), columns = predicted class), accumulated over
    the epoch's augmented batches.

``dynamics/`` (added within version 2; a run without it has no record of its training
images: runs from before it, and runs that ended before their first epoch did)
    What the training steps said of every training image, epoch by epoch, for forgetting
    events and data maps (:mod:`resnet_core.dynamics`). ``train_images.npz``, written when
    training starts (again, the same, on a resume): ``indices`` (int64, N: each training
    image's index in the training set, in the order of every epoch file's arrays),
    ``labels`` (int64, N: the labels trained on, after ``label_noise``) and
    ``original_labels`` (int64, N: the data set's labels; they differ from ``labels``
    exactly at the images ``label_noise`` flipped). ``train_epoch_{NNN}.npz`` at the end
    of each epoch (epoch 1-based, three digits, as in ``predictions/``): ``label_prob``
    (float16, N: the softmax probability of the image's trained label, from the forward
    pass of the training step that presented it in that epoch: augmented, BatchNorm in
    training mode, the step's logits softmaxed in fp32; NaN where the epoch did not present
    the image: the last partial batch each epoch drops, the steps a ``max_steps`` run never
    took) and ``correct`` (uint8, ceil(N / 8) bytes: ``numpy.packbits`` (big bit order) of
    whether the logits' argmax is the trained label; 0 where not presented). A stop
    mid-epoch carries the epoch's record so far in last.pt's ``partial_epoch``
    (``dynamics``: ``label_prob`` float32 and ``correct`` bool, CPU tensors of N each, every
    rank's record combined), so a resumed epoch records each image once. Under torchrun
    each rank records the images it presented and rank 0 writes them all. Readers take the
    epochs 1..E of an unbroken sequence from 1 and raise RunFolderError for a file whose
    arrays are not as above.

``features/{split}_{checkpoint}.npz`` (added within version 2; a cache, never written by
the trainer: :mod:`resnet_core.embeddings` writes it, ``python -m resnet_core.embed`` and
the pages read it; deleting it only costs the time to compute it again)
    ``split`` ``val``, ``test`` or ``train`` (the images the run trained on), ``checkpoint``
    ``best`` or ``last`` as asked: the penultimate features of the split's images under that
    checkpoint. Arrays ``indices`` (int64, N: each image's index in its source set, the
    training set for val and train), ``labels`` (int64, N: the data set's labels, never
    those ``label_noise`` trained on), ``predictions`` (int64, N: the checkpoint's argmax),
    ``confidence`` (float32, N: its largest softmax probability), ``features`` (float32,
    N x D: the last stage after global average pooling, fp32, eval mode) and the key of
    the checkpoint they came from: ``checkpoint_file`` (a string, ``best.pt`` or
    ``last.pt``: "best" falls back to last.pt), ``checkpoint_mtime_ns`` and
    ``checkpoint_size`` (int64 scalars). Written atomically; a reader takes a file whose
    key is not the checkpoint file's now, or whose arrays are not as above or take more
    than MAX_FEATURE_BYTES (128 MiB) uncompressed, for none, and computes them again.

``features/{split}_{checkpoint}_tsne.npz`` (added within version 2; written by the
dashboard, never by the trainer: the atlas's t-SNE map of the split's features under the
checkpoint, :mod:`resnet_core.projections`)
    ``coords`` (float32, N x 2: one row per row of the features, in their order) and
    ``features_digest`` (uint8, 16: BLAKE2b of the features' shape and float32 bytes,
    :func:`resnet_core.projections.features_digest`). Readers (``cached_projection``) take
    a map whose digest is not that of the features now (recomputed from a new checkpoint),
    whose arrays are not as above or whose file is damaged for none, and never raise.

``data_files.json`` (added within version 2; only for data read from image files, an image
folder run's, never for CIFAR's batches)
    ``{"train": [...], "test": [...]}``: each image's file as a path relative to the data
    folder, POSIX separators, in the order of the training and test sets' arrays (the
    ``indices`` of ``predictions/``, ``dynamics/`` and ``features/`` point into them).
    Written once, atomically, when the data is known. Readers (:func:`read_data_files`) take
    a file that is not this (not UTF-8 JSON, over 64 MiB, a split missing or not a list of
    relative paths without ``..``) for none, and never raise.

``annotations.json`` (added within version 2; written by the dashboard, never by the trainer)
    A user's ``name`` (one line, at most 80 characters; the folder keeps its id), ``tags`` (at most
    20, each 1-32 of letters, digits and ``- _ . : + = /``, from a letter or digit) and ``note``
    (at most 2,000 characters), ``updated`` (unix seconds); replaced atomically on every save.
    It takes the place of config.json's launch ``tags`` and ``note`` once present. Readers
    (:func:`read_annotations`) take a file that is not this (damaged, a link, a part of the wrong
    type or past a limit) for absent, and never raise.

``train.log``
    The trainer's log, with the traceback of a ``failed`` run. ``console.log``: stdout
    and stderr of a trainer launched by the dashboard (a refusal before the run starts
    lands there as one line). Before the run has a record, the trainer prints how far its
    download or image decoding went as ``<what>: <done> of <total> <unit> (<percent>%)``
    (:class:`StartingProgress`): the Monitor shows the last such line as a progress bar.

Deleting
--------
The dashboard deletes a run by renaming its folder to ``<runs-dir>/.deleting-<random>``
(a dot folder: no listing shows it) and then removing that; one left behind is a delete
that could not finish (its error named it), safe to remove by hand.

Device locks
------------
``<runs-dir>/.device-<device>.lock`` (``cpu``, ``cuda-0``, ...; further slots
``.device-<device>-slot<K>.lock``): a trainer holds an exclusive flock on one slot of the
device it computes on, from leaving ``queued`` to its exit (see resnet_core.placement);
one started with ``--no-device-lock`` (by a sweep on Ray, which places its runs) takes none.

Sweep records
-------------
``<runs-dir>/.sweeps/<name>.json``, its ``.lock``, ``.log`` and, for a search, its
Optuna study ``<name>.optuna.db``: written only by the sweep process; their format is
defined in resnet_core/runs/sweep_format.py.

Caches
------
``<runs-dir>/.cache/`` (a dot folder, so run listings skip it) keeps what is computed from the
data folder alone, for every run: ``duplicates-<key>.npz`` (resnet_core.duplicates_cache; key:
a hash of the method, the data folder's path and its batch files' sizes and modification
times), arrays ``train_indices`` (int64) and ``distance`` (float32), one each test image: its
nearest training image in pixel space and their distance. Written atomically by the dashboard
or ``resnet_core.embed``; a reader that cannot use one computes it again and never raises.
``folders/folder-<hash of ROOT, image size, resize>.npz`` (resnet_core.image_folder): an image
folder decoded, ``key`` (a digest of the cache version, size, rule and every image's path,
size and mtime), ``kept`` (bool, one each file: decoded), ``reasons`` (why each other one
was not) and ``images`` (uint8, N x 3 x S x S, of the kept files in the folder's order);
one per folder and size, replaced when a file changes, written by the trainer (or the
dashboard), read by both. Safe to delete: the next load decodes again.

Temporary files ``.*.tmp`` (in the folder, ``predictions/`` or ``dynamics/``) are atomic writes that a
kill interrupted: the trainer deletes them when it resumes, and every trainer, when it
starts, deletes those of the runs beside its own that are not active, not unreadable and
not read-only, once they are a minute old (:func:`remove_stale_temps`). Readers never write.

Reading never raises
--------------------
Readers open run files without following symlinks. A run folder is a real folder: an entry
of the runs folder that is a symbolic link to a folder (``ln -s RUN alias``) is listed
(within version 2) as ``unreadable`` with :data:`SYMLINKED_RUN` as its problem, never read,
resumed or cleaned through, and deleting it removes the link only; a dangling link or one to
a file is not listed. To keep runs on another disk, link the whole runs folder. Deleting a
run folder removes links inside it, never what they point to. A folder whose config.json or
status.json cannot be read as this format says (not UTF-8 or not JSON, not a JSON
object, over 1 MiB, a folder, FIFO or symlink, a section that is not an object, classes
that are not a list of strings or list more than MAX_CLASSES (1,000), a ``created`` that
is not a number, an unknown state, a pid that is not an int in 1..2**31-1, a
``pid_start`` that is not an int >= 0, a ``format_version`` that is not an int >= 1)
reads with the derived state ``unreadable`` and a one-line :attr:`RunInfo.problem`: it
is listed, never resumed, and can be deleted.
A folder whose ``format_version`` is above FORMAT_VERSION is ``read_only``: shown with
:attr:`RunInfo.note`, never resumed into or cleaned; one of an older version reads
normally, with a note, and is not resumed either. metrics.jsonl lines that are not
objects, and rows whose ``epoch`` or ``step`` is not an int in 0..2**53, are skipped;
every number is read through :mod:`resnet_core.runs.values` (an integer of more than 24
digits reads as a float, inf beyond any float; a count outside 0..2**53, a float that is
not finite and a boolean read as unknown), so no number a file holds makes a reader raise;
:func:`load_predictions` raises :class:`RunFolderError` for a missing, damaged or
inconsistent file, and for one whose arrays take more than MAX_PREDICTION_BYTES (64 MiB)
uncompressed, before reading them (:func:`load_dynamics` likewise for dynamics/, each
file against what its N images take, and for a record that would take more than
MAX_DYNAMICS_BYTES (1 GiB) in memory); only files named exactly as :func:`prediction_path`
names them (``val_epoch_001.npz``, not ``val_epoch_0001.npz``) are recorded epochs. No
reader's time or memory grows with a number a folder holds (an epoch in a file name, a
count, a depth) rather than with the data it holds.
"""
