"""retention-study: does price or lack of contact better explain why customers leave?

The package computes; the notebooks in ``notebooks/`` orchestrate. Data flows one way:

``load`` (read + check, ledger) -> ``timeline`` (start/stop episodes) -> ``models``
(Cox fits per block, on the ``survival`` engine) -> ``compare`` / ``whatif`` / ``verdict``
-> ``pipeline`` (a run's :class:`~retention_study.analysis.results.Results`) -> ``narrative`` /
``plots`` -> ``runner`` (papermill + nbconvert runner). ``simulate`` writes data with a
known truth; ``cli`` is the command line.
"""

from retention_study.errors import (
    AnalysisError,
    ConfigError,
    DataContractError,
    RetentionStudyError,
)

__version__ = "0.1.0"

__all__ = [
    "AnalysisError",
    "ConfigError",
    "DataContractError",
    "RetentionStudyError",
    "__version__",
]
