"""retention-study: does price or lack of contact better explain why customers leave?

The package computes; the notebooks in ``notebooks/`` orchestrate. Data flows one way:

``load`` (read + check, ledger) -> ``timeline`` (start/stop episodes) -> ``models``
(Cox fits per block) -> ``compare`` (head-to-head and verdict) -> ``plots`` /
``runner`` (papermill + nbconvert runner). ``simulate`` writes data with a known truth;
``cli`` is the command line.
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
