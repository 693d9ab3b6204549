# Reference values for random effects with a residual correlation structure (nlme::lme with
# correlation=), REML and ML, for tests/gls/test_lme_reference.py.  Run from anywhere:
#   Rscript tests/reference/gls/make_lme_reference.R
# Reads orthodont.csv and ovary.csv (written by make_reference.R) and writes bodyweight.csv;
# every model is fitted to the data as read back from these CSV files, so the tests fit the
# same numbers.  Writes lme_reference.json beside this script.
#
# A random intercept on the same groups as a compound-symmetry correlation is not identifiable
# (sigma^2 Rho trades with the intercept's variance), so the cs cases put the random intercept
# on an outer factor (BodyWeight: Diet, with cs within Rat) or keep only a random slope
# (Orthodont: ~ 0 + age | Subject).
suppressPackageStartupMessages({library(nlme); library(jsonlite)})
args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))

bw <- as.data.frame(BodyWeight)[, c("weight", "Time", "Rat", "Diet")]
bw$Rat <- as.character(bw$Rat)
bw$Diet <- as.character(bw$Diet)
write.csv(bw, file.path(here, "bodyweight.csv"), row.names = FALSE)
read <- function(f) {
  d <- read.csv(file.path(here, f), stringsAsFactors = FALSE)
  for (g in c("Subject", "Mare", "Rat", "Diet")) if (g %in% names(d)) d[[g]] <- factor(d[[g]])
  d
}
orth <- read("orthodont.csv")
ovary <- read("ovary.csv")
bw <- read("bodyweight.csv")
ctrl <- lmeControl(maxIter = 500, msMaxIter = 500, niterEM = 100, tolerance = 1e-12,
                   msTol = 1e-14, returnObject = TRUE)
ctrl_optim <- lmeControl(opt = "optim", optimMethod = "BFGS", maxIter = 500, msMaxIter = 500,
                         niterEM = 100, tolerance = 1e-12, msTol = 1e-14, returnObject = TRUE)
ovf <- follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time)
ovw <- "follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time)"
cases <- list(
  ovary_ar1 = list(data = ovary, csv = "ovary.csv", fixed = ovf, random = ~ 1 | Mare,
                   cor = corAR1(form = ~ 1 | Mare),
                   formula = paste(ovw, "+ (1 | Mare)"), correlation = "ar1(~ 1 | Mare)",
                   param = "Phi"),
  ovary_ar1_diag = list(data = ovary, csv = "ovary.csv", fixed = ovf,
                        random = list(Mare = pdDiag(~ sin(2 * pi * Time))),
                        cor = corAR1(form = ~ 1 | Mare),
                        formula = paste(ovw, "+ (1 + sin(2 * pi * Time) || Mare)"),
                        correlation = "ar1(~ 1 | Mare)", param = "Phi"),
  orthodont_ar1_slope = list(data = orth, csv = "orthodont.csv", fixed = distance ~ age,
                             random = ~ age | Subject, cor = corAR1(form = ~ 1 | Subject),
                             formula = "distance ~ age + (age | Subject)",
                             correlation = "ar1(~ 1 | Subject)", param = "Phi"),
  orthodont_cs_slope = list(data = orth, csv = "orthodont.csv", fixed = distance ~ age,
                            random = ~ age - 1 | Subject,
                            cor = corCompSymm(form = ~ 1 | Subject),
                            formula = "distance ~ age + (0 + age | Subject)",
                            correlation = "cs(~ 1 | Subject)", param = "Rho"),
  bodyweight_cs_nested = list(data = bw, csv = "bodyweight.csv", fixed = weight ~ Time,
                              random = ~ 1 | Diet, cor = corCompSymm(form = ~ 1 | Diet/Rat),
                              formula = "weight ~ Time + (1 | Diet)",
                              correlation = "cs(~ 1 | Rat)", param = "Rho"),
  bodyweight_ar1_slope = list(data = bw, csv = "bodyweight.csv", fixed = weight ~ Time * Diet,
                              random = ~ Time | Rat, cor = corAR1(form = ~ 1 | Rat),
                              formula = "weight ~ Time * Diet + (Time | Rat)",
                              correlation = "ar1(~ 1 | Rat)", param = "Phi"))

re_rows <- function(f) {
  # random-effects sds and correlations of the (single) grouping factor, lme4's names
  G <- as.matrix(getVarCov(f))
  nm <- colnames(G)
  sds <- sqrt(diag(G))
  out <- list(sd = as.list(setNames(unname(sds), nm)), cor = list())
  if (length(nm) > 1) {
    R <- cov2cor(G)
    for (i in 1:(length(nm) - 1)) for (j in (i + 1):length(nm))
      out$cor[[paste(nm[i], nm[j], sep = ",")]] <- R[i, j]
  }
  out
}

out <- list(nlme_version = as.character(packageVersion("nlme")), R = R.version.string,
            cases = list())
for (nm in names(cases)) {
  cc <- cases[[nm]]
  fits <- list()
  for (method in c("REML", "ML")) {
    # nlme's two optimizers; the fit with the higher log-likelihood is the reference (nlminb
    # stops short of optim's BFGS on BodyWeight's flat random-slope correlation)
    f <- lme(cc$fixed, data = cc$data, random = cc$random, correlation = cc$cor,
             method = method, control = ctrl)
    f2 <- lme(cc$fixed, data = cc$data, random = cc$random, correlation = cc$cor,
              method = method, control = ctrl_optim)
    # nlme's interval is a finite-difference Hessian's (fdHess): "stable" when the two fits,
    # at the same optimum, give intervals within 1e-3 of the width
    ci_of <- function(f) {
      iv <- tryCatch(intervals(f, which = "var-cov"), error = function(e) NULL)
      if (is.null(iv)) NULL else unname(iv$corStruct[1, c("lower", "upper")])
    }
    ci1 <- ci_of(f)
    ci2 <- ci_of(f2)
    stable <- !is.null(ci1) && !is.null(ci2) && max(abs(ci1 - ci2)) < 1e-3 * (ci1[2] - ci1[1])
    if (logLik(f2) > logLik(f)) f <- f2
    tt <- summary(f)$tTable
    ci <- ci_of(f)
    fits[[method]] <- c(list(
      beta = as.list(setNames(tt[, 1], rownames(tt))),
      beta_se = as.list(setNames(tt[, 2], rownames(tt))),
      sigma = f$sigma, logLik = as.numeric(logLik(f)),
      param = unname(coef(f$modelStruct$corStruct, unconstrained = FALSE)),
      param_ci = ci, param_ci_stable = stable, fitted = unname(fitted(f)[1:6]),
      ranef = lapply(split(as.data.frame(ranef(f)), 1), function(x) NULL)[0]),
      re_rows(f))
    # fitted values X beta + Z b of the first rows (data order); BLUPs of the first two levels
    b <- ranef(f)
    fits[[method]]$blup <- lapply(as.list(as.data.frame(b[1:2, , drop = FALSE])),
                                  function(v) as.list(setNames(v, rownames(b)[1:2])))
    fits[[method]]$ranef <- NULL
  }
  out$cases[[nm]] <- list(formula = cc$formula, correlation = cc$correlation, csv = cc$csv,
                          param = cc$param, fits = fits)
}
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           file.path(here, "lme_reference.json"))
