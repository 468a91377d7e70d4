"""Run the study notebook into report folders: ``retention-study run``.

One run executes the study notebook with papermill and leaves a folder
``OUT/<name>/<timestamp>/`` holding

- ``report.html``: the management report (no code, self-contained, printable);
- ``report.ipynb``: the executed notebook, for analysts;
- ``results.json``: written by the notebook itself (parameter ``results_path``);
- ``manifest.json``: parameters, input files (sha256, rows), package versions,
  git commit, the duration of each step and the run's status;
- ``run.log``: what the runner did, with the notebook's stderr.

``OUT/<name>/latest`` points at the newest successful run and ``OUT/index.html``
lists every run. A failed run keeps its notebook (with papermill's error banner)
and ``failed.html`` (every problem) in a folder ``<timestamp>-FAILED``; ``latest``
is never moved to it. A run is staged in ``OUT/.incomplete/`` and renamed into
place when it ends.

The modules, in the order a run meets them:

=============  ==================================================================
``plan``       which runs a command line asks for (configs x ``--grid`` values)
``manifest``   the run's facts: inputs (sha256, rows), versions, git state
``execute``    papermill: the notebook in a kernel; named errors -> exit status
``render``     nbconvert: the management HTML; ``failed.html``
``checks``     the page shows no customer ID, runs no code, fetches nothing
``folders``    staging, publishing, ``latest``, the reports folder's lock
``index``      ``index.html``: every run and each batch
``run``        one run, start to end (:func:`run_config`)
``batch``      several runs in processes (:func:`run_many`)
=============  ==================================================================

The way in is :func:`run_many` (the CLI) or :func:`run_config` (one run).
"""

from retention_study.runner.batch import run_many
from retention_study.runner.run import RunOutcome, run_config

__all__ = ["RunOutcome", "run_config", "run_many"]
