# Reference values for random effects with a residual variance function, alone or with a
# correlation (nlme::lme with weights= and correlation=), REML and ML, for
# tests/gls/test_lme_variance.py.  Run from anywhere:
#   Rscript tests/reference/gls/make_lme_variance_reference.R
# Reads orthodont.csv and bodyweight.csv beside this script; writes lme_variance_reference.json.
# nlme stops its optimisers a little short, so each model is refitted from its own optimum
# until the log-likelihood stops rising (the best of nlminb and optim).
suppressPackageStartupMessages({library(nlme); library(jsonlite)})
args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
read <- function(f) {
  d <- read.csv(file.path(here, f), stringsAsFactors = FALSE)
  for (g in c("Subject", "Rat", "Diet", "Sex")) if (g %in% names(d)) d[[g]] <- factor(d[[g]])
  d
}
orth <- read("orthodont.csv")
bw <- read("bodyweight.csv")
ctrl <- lmeControl(maxIter = 500, msMaxIter = 500, niterEM = 100, tolerance = 1e-12,
                   msTol = 1e-14, returnObject = TRUE)
ctrl_optim <- lmeControl(opt = "optim", optimMethod = "BFGS", maxIter = 500, msMaxIter = 500,
                         niterEM = 100, tolerance = 1e-12, msTol = 1e-14, returnObject = TRUE)
cases <- list(
  orthodont_ident = list(data = orth, csv = "orthodont.csv", fixed = distance ~ age,
                         random = ~ 1 | Subject, weights = varIdent(form = ~ 1 | Sex),
                         cor = NULL, formula = "distance ~ age + (1 | Subject)",
                         variance = "ident(~ 1 | Sex)", correlation = NULL),
  bodyweight_power = list(data = bw, csv = "bodyweight.csv", fixed = weight ~ Time,
                          random = ~ Time | Rat, weights = varPower(form = ~ Time), cor = NULL,
                          formula = "weight ~ Time + (Time | Rat)", variance = "power(~ Time)",
                          correlation = NULL),
  bodyweight_car1_power = list(data = bw, csv = "bodyweight.csv", fixed = weight ~ Time,
                               random = ~ 1 | Rat, weights = varPower(form = ~ Time),
                               cor = corCAR1(form = ~ Time | Rat),
                               formula = "weight ~ Time + (1 | Rat)", variance = "power(~ Time)",
                               correlation = "car1(~ Time | Rat)"))
fit_one <- function(cs, method) {
  fits <- list()
  for (ct in list(ctrl, ctrl_optim)) {
    args <- list(fixed = cs$fixed, random = cs$random, data = cs$data, weights = cs$weights,
                 method = method, control = ct)
    if (!is.null(cs$cor)) args$correlation <- cs$cor
    f <- try(do.call(lme, args), silent = TRUE)
    if (!inherits(f, "try-error")) fits[[length(fits) + 1]] <- f
  }
  ll <- sapply(fits, function(f) as.numeric(logLik(f)))
  fits[[which.max(ll)]]
}
out <- list(nlme_version = as.character(packageVersion("nlme")),
            R = R.version.string, cases = list())
for (nm in names(cases)) {
  cs <- cases[[nm]]
  res <- list(formula = cs$formula, csv = cs$csv, variance = cs$variance,
              correlation = cs$correlation, fits = list())
  for (method in c("REML", "ML")) {
    f <- fit_one(cs, method)
    vs <- coef(f$modelStruct$varStruct, unconstrained = FALSE)
    cor <- if (is.null(cs$cor)) list() else
      as.list(coef(f$modelStruct$corStruct, unconstrained = FALSE))
    G <- pdMatrix(f$modelStruct$reStruct)[[1]] * f$sigma^2
    sds <- sqrt(diag(G))
    res$fits[[method]] <- list(
      logLik = as.numeric(logLik(f)), beta = as.list(fixef(f)),
      beta_se = as.list(summary(f)$tTable[, "Std.Error"]), sigma = f$sigma,
      varstruct = as.list(vs), corstruct = cor,
      sd = as.list(sds))
  }
  out$cases[[nm]] <- res
}
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null"),
           file.path(here, "lme_variance_reference.json"))
