"""Executing the study notebook with papermill (one kernel per run).

A notebook that raises one of the package's named errors fails the run with that
error's exit status: 2 for bad data or config, 1 otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from retention_study.config import KERNEL_NAME
from retention_study.errors import RetentionStudyError
from retention_study.runner.progress import papermill_bar


def _named_errors() -> dict[str, int]:
    """Exit status of each named error by class name (what papermill reports of it)."""
    found, todo = {}, [RetentionStudyError]
    while todo:
        cls = todo.pop()
        found[cls.__name__] = cls.exit_status
        todo += cls.__subclasses__()
    return found


def exit_status_of(ename: str) -> int:
    """The exit status for an exception the notebook raised, named as papermill names it.

    The package's own errors carry theirs (2: bad data or config); anything else is 1.

    Examples
    --------
    >>> exit_status_of("DataContractErrors"), exit_status_of("ConfigError")
    (2, 2)
    >>> exit_status_of("AnalysisError"), exit_status_of("ZeroDivisionError")
    (1, 1)
    """
    return _named_errors().get(ename, 1)


class RunFailed(Exception):
    """A step of a run failed; carries the exit status and the one-line reason."""

    def __init__(self, exit_status: int, reason: str) -> None:
        super().__init__(reason)
        self.exit_status = exit_status
        self.reason = reason


def kernel_installed(kernel_name: str) -> bool:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(kernel_name)
    except NoSuchKernel:
        return False
    return True


def execute_notebook(
    notebook: Path, output: Path, parameters: dict[str, Any], timeout: float | None,
    progress: bool, kernel_name: str = KERNEL_NAME,
) -> None:
    """Run ``notebook`` with papermill into ``output``.

    Raises
    ------
    RunFailed
        With the exit status of the named error the notebook raised (2 for
        DataContractError or ConfigError), else 1; the reason is the exception's
        message.
    """
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    try:
        pm.execute_notebook(
            str(notebook), str(output), parameters=parameters, kernel_name=kernel_name,
            execution_timeout=timeout, progress_bar=papermill_bar(progress), log_output=False,
            cwd=str(Path.cwd()),
            # The kernel's own start-up warnings (TCP transport) would reach cron's mail.
            extra_arguments=["--IPKernelApp.log_level=ERROR"],
        )
    except PapermillExecutionError as exc:
        status = exit_status_of(exc.ename)
        message = str(exc.evalue).strip().splitlines()
        reason = f"{exc.ename}: {message[0] if message else ''}".rstrip(": ")
        raise RunFailed(status, reason) from None
    except TimeoutError:
        raise RunFailed(1, f"the notebook step '{running_step(output)}' ran longer than "
                            f"{timeout:g} s (report.timeout_per_cell)") from None
    except Exception as exc:  # noqa: BLE001 - kernel deaths etc.: one line for cron
        first = str(exc).strip().splitlines()
        raise RunFailed(1, f"{type(exc).__name__}: {first[0] if first else ''}") from None


def running_step(executed: Path) -> str:
    """The step a stopped notebook was in: the heading above the cell that was running.

    Papermill stamps each cell's start time in the output notebook as it goes (and
    marks every status 'completed' when it stops), so the cell that was stopped is
    the last one with a start time. The step is named by the closest markdown
    heading above it and its first line of code, as an analyst finds it in
    ``report.ipynb``.
    """
    import nbformat

    try:
        nb = nbformat.read(str(executed), as_version=4)
    except Exception:  # noqa: BLE001 - naming the step must not hide the timeout
        return "unknown"
    heading, running = None, None
    for number, cell in enumerate(nb.cells, start=1):
        if not cell.get("metadata", {}).get("papermill", {}).get("start_time"):
            break
        if cell.cell_type == "markdown":
            lines = [ln.lstrip("#").strip() for ln in cell.source.splitlines()
                     if ln.startswith("#")]
            heading = lines[0] if lines else heading
        else:
            running = number, cell, heading
    if running is None:
        return "unknown"
    number, cell, heading = running
    code = next((ln.strip() for ln in cell.source.splitlines() if ln.strip()), "")
    return f"{heading or 'notebook'}, cell {number}: {code[:60]}"
