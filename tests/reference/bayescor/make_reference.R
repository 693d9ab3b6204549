# Reference values for the Bayesian fitter with a residual correlation structure and random
# effects (workbench.fit(..., method = "bayes", correlation = ...)): nlme::lme with corAR1 and
# corCompSymm on nlme's Ovary, REML and ML.  Writes the data (ovary.csv) and the values
# (lme_reference.json) beside this script.  Run from anywhere:
#   Rscript tests/reference/bayescor/make_reference.R
suppressPackageStartupMessages({library(nlme); library(jsonlite)})
args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))

ovary <- as.data.frame(Ovary)[, c("Mare", "Time", "follicles")]
ovary$Mare <- as.character(ovary$Mare)
write.csv(ovary, file.path(here, "ovary.csv"), row.names = FALSE)
cases <- list(
  ovary_ar1_ri = list(correlation = "ar1(~ 1 | Mare)", cor = corAR1(form = ~ 1 | Mare),
                      param = "Phi"),
  ovary_cs_ri = list(correlation = "cs(~ 1 | Mare)", cor = corCompSymm(form = ~ 1 | Mare),
                     param = "Rho"))
out <- list(nlme_version = as.character(packageVersion("nlme")), R = R.version.string,
            csv = "ovary.csv",
            formula = "follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time) + (1 | Mare)",
            cases = list())
for (nm in names(cases)) {
  cc <- cases[[nm]]
  fits <- list()
  for (method in c("REML", "ML")) {
    f <- lme(follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time), data = ovary,
             random = ~ 1 | Mare, correlation = cc$cor, method = method)
    tt <- summary(f)$tTable
    vc <- sqrt(as.numeric(getVarCov(f)))
    fits[[method]] <- list(beta = as.list(tt[, "Value"]), beta_se = as.list(tt[, "Std.Error"]),
                           sd_Mare = vc[1], sigma = f$sigma, logLik = as.numeric(logLik(f)),
                           param = unname(coef(f$modelStruct$corStruct, unconstrained = FALSE)))
  }
  out$cases[[nm]] <- list(correlation = cc$correlation, param = cc$param, fits = fits)
}
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           file.path(here, "lme_reference.json"))
