"""Planning: which runs a command line asks for (configs x ``--grid`` values)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from retention_study.errors import ConfigError
from retention_study.runner.folders import safe_name


@dataclass(frozen=True)
class RunSpec:
    """One planned run: a config file, its overrides and the grid values it stands for."""

    config: Path
    overrides: tuple[str, ...] = ()
    grid: tuple[tuple[str, str], ...] = ()
    batch: str | None = None
    batch_size: int = 1

    @property
    def suffix(self) -> str:
        return "-".join(safe_name(v) for _, v in self.grid)


def parse_grid(grid: Sequence[str]) -> list[list[tuple[str, str]]]:
    """Read ``--grid key=v1,v2`` options into one list of (key, value) per option.

    Examples
    --------
    >>> parse_grid(["study.lag_days=0,30"])
    [[('study.lag_days', '0'), ('study.lag_days', '30')]]
    """
    axes = []
    for text in grid:
        key, sep, values = text.partition("=")
        items = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not key.strip() or not items:
            raise ConfigError(f"--grid {text}: expected key=value1,value2,...")
        axes.append([(key.strip(), v) for v in items])
    return axes


def plan_runs(
    configs: Sequence[Path], overrides: Sequence[str] = (), grid: Sequence[str] = (),
    batch: str | None = None,
) -> list[RunSpec]:
    """Every (config, grid point) pair, in order.

    Examples
    --------
    >>> specs = plan_runs([Path("a.yaml")], grid=["study.lag_days=0,30"])
    >>> [s.overrides for s in specs]
    [('study.lag_days=0',), ('study.lag_days=30',)]
    """
    points = list(itertools.product(*parse_grid(grid))) if grid else [()]
    pairs = [(Path(c), p) for c in configs for p in points]
    return [
        RunSpec(c, tuple(overrides) + tuple(f"{k}={v}" for k, v in p), tuple(p), batch,
                len(pairs))
        for c, p in pairs
    ]
