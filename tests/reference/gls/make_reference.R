# Reference values for workbench's feasible GLS (method = "fgls"): plm's random-effects
# estimator, plm(model = "random", random.method = M), on plm's balanced Grunfeld panel and its
# unbalanced EmplUK panel, and lme4's sleepstudy (balanced, with an aliased between regression)
# and that made unbalanced.  Writes the data (CSV) and the values (fgls_reference.json) beside
# this script.  Run from anywhere:  Rscript tests/reference/gls/make_reference.R
suppressPackageStartupMessages({library(plm); library(jsonlite); library(lme4)})
args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))

data("Grunfeld", package = "plm")
data("EmplUK", package = "plm")
panels <- list(
  grunfeld = list(data = Grunfeld[, c("firm", "year", "inv", "value", "capital")],
                  plm = inv ~ value + capital, index = c("firm", "year"),
                  workbench = "inv ~ value + capital + (1 | firm)"),
  empluk = list(data = EmplUK[, c("firm", "year", "emp", "wage", "capital")],
                plm = emp ~ wage + capital, index = c("firm", "year"),
                workbench = "emp ~ wage + capital + (1 | firm)"),
  # balanced, and Days has the same mean in every group: the between regression is aliased
  sleepstudy = list(data = transform(lme4::sleepstudy, t = Days)[, c("Subject", "t", "Reaction", "Days")],
                    plm = Reaction ~ Days, index = c("Subject", "t"),
                    workbench = "Reaction ~ Days + (1 | Subject)"),
  # the same made unbalanced (three rows dropped)
  sleepstudy_unbalanced = list(
    data = transform(lme4::sleepstudy, t = Days)[-c(1, 2, 15), c("Subject", "t", "Reaction", "Days")],
    plm = Reaction ~ Days, index = c("Subject", "t"),
    workbench = "Reaction ~ Days + (1 | Subject)"))

out <- list(plm_version = as.character(packageVersion("plm")), R = R.version.string,
            panels = list())
for (nm in names(panels)) {
  p <- panels[[nm]]
  write.csv(p$data, file.path(here, paste0(nm, ".csv")), row.names = FALSE)
  fits <- list()
  # plm 2.6.2 on sleepstudy: random.method = "swar" on a balanced panel and the other
  # estimators as below (lme4's REML variance of (1 | Subject) equals Swamy-Arora's here)
  for (m in c("swar", "walhus", "amemiya", "nerlove")) {
    f <- plm(p$plm, data = p$data, index = p$index, model = "random", random.method = m)
    ec <- ercomp(f)
    cf <- coef(summary(f))
    fits[[m]] <- list(beta = as.list(cf[, 1]), beta_se = as.list(cf[, 2]),
                      sigma2_idios = unname(ec$sigma2["idios"]),
                      sigma2_id = unname(ec$sigma2["id"]))
    # theta is per row on an unbalanced panel: kept for balanced ones only
    if (is.pbalanced(f)) fits[[m]]$theta <- unname(as.numeric(ec$theta))
  }
  out$panels[[nm]] <- list(formula = p$workbench, csv = paste0(nm, ".csv"), index = p$index,
                           balanced = is.pbalanced(p$data, index = p$index),
                           nobs = nrow(p$data), fits = fits)
}
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           file.path(here, "fgls_reference.json"))

# ---------------------------------------------------------------------------------------------
# nlme::gls with a correlation structure and no random effects (workbench's correlation =
# "cs(~ 1 | g)" / "ar1(~ 1 | g)"), REML and ML, on nlme's Orthodont and Ovary.
suppressPackageStartupMessages(library(nlme))
orth <- as.data.frame(Orthodont)[, c("distance", "age", "Subject", "Sex")]
orth$Subject <- as.character(orth$Subject)
ovary <- as.data.frame(Ovary)[, c("Mare", "Time", "follicles")]
ovary$Mare <- as.character(ovary$Mare)
write.csv(orth, file.path(here, "orthodont.csv"), row.names = FALSE)
write.csv(ovary, file.path(here, "ovary.csv"), row.names = FALSE)
cases <- list(
  orthodont_cs = list(data = orth, csv = "orthodont.csv", model = distance ~ age,
                      formula = "distance ~ age", correlation = "cs(~ 1 | Subject)",
                      cor = corCompSymm(form = ~ 1 | Subject), param = "Rho"),
  orthodont_ar1 = list(data = orth, csv = "orthodont.csv", model = distance ~ age,
                       formula = "distance ~ age", correlation = "ar1(~ 1 | Subject)",
                       cor = corAR1(form = ~ 1 | Subject), param = "Phi"),
  ovary_ar1 = list(data = ovary, csv = "ovary.csv",
                   model = follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time),
                   formula = "follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time)",
                   correlation = "ar1(~ 1 | Mare)", cor = corAR1(form = ~ 1 | Mare),
                   param = "Phi"),
  ovary_cs = list(data = ovary, csv = "ovary.csv",
                  model = follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time),
                  formula = "follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time)",
                  correlation = "cs(~ 1 | Mare)", cor = corCompSymm(form = ~ 1 | Mare),
                  param = "Rho"))
gls_out <- list(nlme_version = as.character(packageVersion("nlme")), R = R.version.string,
                cases = list())
for (nm in names(cases)) {
  cc <- cases[[nm]]
  fits <- list()
  for (method in c("REML", "ML")) {
    f <- gls(cc$model, data = cc$data, correlation = cc$cor, method = method)
    tt <- summary(f)$tTable
    iv <- intervals(f, which = "var-cov")
    fits[[method]] <- list(
      beta = as.list(setNames(tt[, 1], rownames(tt))),
      beta_se = as.list(setNames(tt[, 2], rownames(tt))),
      sigma = f$sigma, logLik = as.numeric(logLik(f)),
      param = unname(coef(f$modelStruct$corStruct, unconstrained = FALSE)),
      param_ci = unname(iv$corStruct[1, c("lower", "upper")]))
  }
  gls_out$cases[[nm]] <- list(formula = cc$formula, correlation = cc$correlation,
                              csv = cc$csv, param = cc$param, fits = fits)
}
writeLines(toJSON(gls_out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           file.path(here, "gls_reference.json"))

# ---------------------------------------------------------------------------------------------
# nlme::gls with the other residual structures (workbench's correlation = "symm(~ t | g)",
# "car1(~ t | g)", "ar1(~ 1 | g)" and variance = "ident(~ 1 | f)", "power(~ x)", alone and
# together), REML and ML, on nlme's Orthodont, BodyWeight and Dialyzer.  Every parameter is
# reported under nlme's name with intervals(): nlme's own (fdHess with its default steps) and
# the same Wald formula with fdHess at steps 1e-4 and 2e-4 (glsControl(.relStep,
# minAbsParApVar = 1)) extrapolated to step 0 (both from the refit below), since nlme's default step is |par| * 6e-6 and its rounding error
# swamps the curvature of a parameter near zero on the unconstrained scale.
orth$occ <- as.integer((orth$age - 6) / 2)
write.csv(orth, file.path(here, "orthodont.csv"), row.names = FALSE)
orth$Sex <- as.character(orth$Sex)  # factor levels in sorted order, as a CSV reader gives them
bw <- as.data.frame(BodyWeight)[, c("weight", "Time", "Rat", "Diet")]
bw$Rat <- as.character(bw$Rat); bw$Diet <- as.character(bw$Diet)
dial <- as.data.frame(Dialyzer)[, c("Subject", "QB", "pressure", "rate")]
dial$Subject <- as.character(dial$Subject); dial$QB <- as.character(dial$QB)
write.csv(bw, file.path(here, "bodyweight.csv"), row.names = FALSE)
write.csv(dial, file.path(here, "dialyzer.csv"), row.names = FALSE)
structs <- list(
  orthodont_symm = list(data = orth, csv = "orthodont.csv", model = distance ~ Sex * age,
                        formula = "distance ~ Sex * age", correlation = "symm(~ occ | Subject)",
                        cor = corSymm(form = ~ occ | Subject)),
  orthodont_ident = list(data = orth, csv = "orthodont.csv", model = distance ~ Sex * age,
                         formula = "distance ~ Sex * age", variance = "ident(~ 1 | age)",
                         var = varIdent(form = ~ 1 | age)),
  orthodont_symm_ident = list(data = orth, csv = "orthodont.csv", model = distance ~ Sex * age,
                              formula = "distance ~ Sex * age",
                              correlation = "symm(~ occ | Subject)",
                              cor = corSymm(form = ~ occ | Subject),
                              variance = "ident(~ 1 | age)", var = varIdent(form = ~ 1 | age)),
  bodyweight_car1 = list(data = bw, csv = "bodyweight.csv", model = weight ~ Time * Diet,
                         formula = "weight ~ Time * Diet", correlation = "car1(~ Time | Rat)",
                         cor = corCAR1(form = ~ Time | Rat)),
  bodyweight_car1_power = list(data = bw, csv = "bodyweight.csv", model = weight ~ Time * Diet,
                               formula = "weight ~ Time * Diet",
                               correlation = "car1(~ Time | Rat)",
                               cor = corCAR1(form = ~ Time | Rat),
                               variance = "power(~ Time)", var = varPower(form = ~ Time)),
  bodyweight_ident_car1 = list(data = bw, csv = "bodyweight.csv", model = weight ~ Time * Diet,
                               formula = "weight ~ Time * Diet",
                               correlation = "car1(~ Time | Rat)",
                               cor = corCAR1(form = ~ Time | Rat),
                               variance = "ident(~ 1 | Diet)", var = varIdent(form = ~ 1 | Diet)),
  dialyzer_power = list(data = dial, csv = "dialyzer.csv",
                        model = rate ~ (pressure + I(pressure^2)) * QB,
                        formula = "rate ~ (pressure + I(pressure^2)) * QB",
                        variance = "power(~ pressure)", var = varPower(form = ~ pressure)),
  dialyzer_ar1_power = list(data = dial, csv = "dialyzer.csv",
                            model = rate ~ (pressure + I(pressure^2)) * QB,
                            formula = "rate ~ (pressure + I(pressure^2)) * QB",
                            correlation = "ar1(~ 1 | Subject)", cor = corAR1(form = ~ 1 | Subject),
                            variance = "power(~ pressure)", var = varPower(form = ~ pressure)))
iv_table <- function(iv, what) {
  if (is.null(iv[[what]])) return(NULL)
  m <- iv[[what]]
  lapply(setNames(seq_len(nrow(m)), rownames(m)), function(i) unname(m[i, c("lower", "upper")]))
}
# nlme's Wald scale of each structure's parameters, and its inverse
wald_scale <- list(
  symm = list(function(r) log((1 + r) / (1 - r)), function(v) tanh(v / 2)),
  ar1 = list(function(r) log((1 + r) / (1 - r)), function(v) tanh(v / 2)),
  car1 = list(function(p) log(p / (1 - p)), function(v) 1 / (1 + exp(-v))),
  ident = list(log, exp), power = list(identity, identity))
# The interval with fdHess's Hessian extrapolated to step 0 from steps h and 2h: fdHess's cross
# terms are one-sided, so its error is O(h); the variance at step 0 is 2 var(h) - var(2h).
richardson <- function(iv1, iv2, what, text) {
  sc <- wald_scale[[sub("\\(.*", "", text)]]
  a <- iv1[[what]]; b <- iv2[[what]]
  out <- lapply(setNames(rownames(a), rownames(a)), function(k) {
    l1 <- sc[[1]](a[k, c("lower", "upper")]); l2 <- sc[[1]](b[k, c("lower", "upper")])
    mid <- mean(l1); w <- sqrt(2 * (diff(l1) / 2)^2 - (diff(l2) / 2)^2)
    unname(sc[[2]](c(mid - w, mid + w)))
  })
  out
}
struct_out <- list(nlme_version = as.character(packageVersion("nlme")), R = R.version.string,
                   cases = list())
for (nm in names(structs)) {
  cc <- structs[[nm]]
  fits <- list()
  for (method in c("REML", "ML")) {
    args <- list(model = cc$model, data = cc$data, method = method)
    if (!is.null(cc$cor)) args$correlation <- cc$cor
    if (!is.null(cc$var)) args$weights <- cc$var
    f0 <- do.call(gls, args)
    # nlminb stops ~1e-9 short in log-likelihood, ~1e-5 in a corSymm correlation: the values
    # are nlme's refit started from its own first optimum (which only ever raises logLik)
    if (!is.null(cc$cor)) args$correlation <- f0$modelStruct$corStruct
    if (!is.null(cc$var)) args$weights <- f0$modelStruct$varStruct
    f <- do.call(gls, args)
    stopifnot(logLik(f) >= logLik(f0) - 1e-9)
    g1 <- do.call(gls, c(args, list(control = glsControl(.relStep = 1e-4, minAbsParApVar = 1))))
    g2 <- do.call(gls, c(args, list(control = glsControl(.relStep = 2e-4, minAbsParApVar = 1))))
    tt <- summary(f)$tTable
    iv <- intervals(f, which = "var-cov")
    iv1 <- intervals(g1, which = "var-cov")
    iv2 <- intervals(g2, which = "var-cov")
    fit <- list(beta = as.list(setNames(tt[, 1], rownames(tt))),
                beta_se = as.list(setNames(tt[, 2], rownames(tt))),
                sigma = f$sigma, logLik = as.numeric(logLik(f)),
                logLik_first = as.numeric(logLik(f0)))
    if (!is.null(cc$cor)) {
      cf <- coef(f$modelStruct$corStruct, unconstrained = FALSE)
      if (is.null(names(cf)) || inherits(f$modelStruct$corStruct, "corSymm"))
        names(cf) <- rownames(iv$corStruct)
      fit$corstruct <- as.list(cf)
      fit$corstruct_ci <- iv_table(iv, "corStruct")
      fit$corstruct_ci_step <- richardson(iv1, iv2, "corStruct", cc$correlation)
    }
    if (!is.null(cc$var)) {
      fit$varstruct <- as.list(coef(f$modelStruct$varStruct, unconstrained = FALSE))
      fit$varstruct_ci <- iv_table(iv, "varStruct")
      fit$varstruct_ci_step <- richardson(iv1, iv2, "varStruct", cc$variance)
    }
    fits[[method]] <- fit
  }
  # columns of digits that are factors: read them as strings
  strings <- intersect(c("Diet", "QB"), names(cc$data))
  struct_out$cases[[nm]] <- list(formula = cc$formula, csv = cc$csv, strings = I(strings),
                                 correlation = cc$correlation, variance = cc$variance,
                                 fits = fits)
}
# symm + ident on balanced Orthodont is the unstructured marginal covariance: lme4 with one
# random effect per occasion plus a residual (108 random effects for 108 observations: lme4
# refuses it unless told to ignore the check; the split of G + sigma^2 I is not identified)
suppressPackageStartupMessages(library(lme4))
orth$focc <- factor(orth$occ)
m <- lmer(distance ~ Sex * age + (0 + focc | Subject), orth,
          control = lmerControl(check.nobs.vs.nRE = "ignore", check.conv.hess = "ignore",
                                check.conv.grad = "ignore"))
struct_out$unstructured_lme4 <- list(
  formula = "distance ~ Sex * age + (0 + focc | Subject)", REML = REMLcrit(m), sigma = sigma(m),
  beta = as.list(fixef(m)), beta_se = as.list(sqrt(diag(as.matrix(vcov(m))))),
  refused = inherits(try(lmer(distance ~ Sex * age + (0 + focc | Subject), orth), silent = TRUE),
                     "try-error"))
writeLines(toJSON(struct_out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           file.path(here, "gls_structures.json"))
