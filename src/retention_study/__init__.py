"""retention-study: does price or lack of contact better explain why customers leave?

The package computes; the notebooks in ``notebooks/`` orchestrate. Data flows one way
through the sub-packages, each importing only those before it:

``config`` + ``data`` (read + check, ledger -> StudyData) -> ``episodes`` (start/stop
episodes, the vocabulary of measures) -> ``survival`` (the Cox engine) -> ``engines``
(the episodes in SQL) -> ``analysis`` (models, compare, whatif, verdict, ... ->
``pipeline`` -> :class:`~retention_study.analysis.results.Results`) -> ``present``
(narrative, plots) -> ``runner`` (papermill + nbconvert) -> ``cli``.
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
