"""The Bayesian fitter: a PyMC model of the same design the REML engine fits.

Modules, one concept each:

* :mod:`.priors`: prior strings (``"HalfCauchy(5)"``) -> :class:`~.priors.Prior`, keys
  (``beta``, ``sd[g:x]``, ``corr``, ``sigma``) -> resolved priors, data-scaled defaults;
* :mod:`.lkj`: the LKJ prior on a correlation Cholesky factor (unconstrained transform);
* :mod:`.marginal`: the collapsed GLS likelihood from sufficient statistics and the exact
  conditional draws of the random effects;
* :mod:`.fast`: the default for one grouping factor: beta and the random effects integrated
  out, an independence sampler on the variance parameters, exact draws of the rest;
* :mod:`.corstruct`: nlme's residual correlation structures (cs, ar1) in the marginal model,
  with or without random effects: closed-form statistics, the likelihood, correlated
  predictive draws; :mod:`.corfit` fits it;
* :mod:`.model`: design + priors -> PyMC model (centered | noncentered | marginal);
* :mod:`.sample`: PyMC NUTS or nutpie on a compiled model, refit with new data;
* :mod:`.cache`: compiled models keyed by structure, shapes, prior families, parameterisation
  and sampler;
* :mod:`.draws`: posterior and prior draws as tidy data frames, predictive draws;
* :mod:`.fit`: :func:`~.fit.fit_bayes`, the record.

Nothing here is imported by ``import workbench``; PyMC loads on the first Bayesian fit.
"""
