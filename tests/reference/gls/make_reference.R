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
