"""Survival models of the study: one Cox engine (:class:`CoxFitter`) used everywhere.

lifelines stays for Kaplan-Meier curves, Aalen-Johansen and as the tests' reference;
:meth:`CoxFitter.to_lifelines` refits a model with lifelines for an analyst.
"""

from retention_study.survival.cox import (
    CoxConvergenceError,
    CoxData,
    CoxFitter,
    CoxSeparationError,
    log_partial_likelihood,
    loglik_grad_info,
)
from retention_study.survival.riskset import (
    RiskSetIndex,
    RiskSetSums,
    index_risk_sets,
    risk_set_sums,
)

__all__ = ["CoxConvergenceError", "CoxData", "CoxFitter", "CoxSeparationError", "RiskSetIndex",
           "RiskSetSums", "index_risk_sets", "log_partial_likelihood", "loglik_grad_info",
           "risk_set_sums"]
