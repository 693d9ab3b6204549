"""The other GLS traditions beside the REML/ML engine.

* :mod:`workbench.gls.fgls` -- feasible GLS: random-intercept variance components from moment
  (ANOVA) estimators (Swamy-Arora, Wallace-Hussain, Amemiya, Nerlove; plm's ``random.method``),
  then GLS by quasi-demeaning (Stata's ``xtreg, re``, R's ``plm(model = "random")``).
* :mod:`workbench.gls.igls` -- Goldstein's iterated GLS (IGLS -> ML, RIGLS -> REML), with the
  iteration trace kept.
* :mod:`workbench.gls.lme` -- random effects with a residual correlation structure
  (``nlme::lme(..., correlation=)``): rows whitened within groups, the REML/ML engine on them.
* :mod:`workbench.gls.reconcile` -- GLS forecast reconciliation S (S' W^-1 S)^-1 S' W^-1.
"""
