# Reference fits for the optimizer's hard cases (tests/reml/test_optimize.py).
# Run from the repository root:  Rscript tests/reml/data/make_hard_cases.R
# Writes tests/reml/data/spruce.csv and tests/reml/data/hard_cases_lme4.json.
suppressPackageStartupMessages({library(lme4); library(nlme); library(jsonlite)})
out <- "tests/reml/data"
sp <- as.data.frame(nlme::Spruce)
sp$Tree <- as.character(sp$Tree)
sp$plot <- as.character(sp$plot)
write.csv(sp[, c("Tree", "days", "logSize", "plot")], file.path(out, "spruce.csv"), row.names = FALSE)
tight <- lmerControl(optimizer = "nloptwrap", optCtrl = list(ftol_abs = 1e-12, xtol_abs = 1e-10),
                     check.conv.singular = "ignore")
bob <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5),
                   check.conv.singular = "ignore")
one <- function(formula, data, reml = TRUE) {
  res <- list()
  for (nm in c("default", "tight", "bobyqa")) {
    ctrl <- switch(nm, default = lmerControl(), tight = tight, bobyqa = bob)
    m <- lmer(as.formula(formula), data = data, REML = reml, control = ctrl)
    vc <- as.data.frame(VarCorr(m))
    res[[nm]] <- list(criterion = if (reml) unname(REMLcrit(m)) else unname(deviance(m)),
                      theta = unname(getME(m, "theta")), sigma = sigma(m),
                      beta = as.list(fixef(m)), se = as.list(sqrt(diag(as.matrix(vcov(m))))),
                      sdcor = vc$sdcor)
  }
  res$formula <- formula
  res$reml <- reml
  res$lme4 <- as.character(packageVersion("lme4"))
  res
}
ss <- lme4::sleepstudy
ss$D <- ss$Days * 1000
# q = 3 with covariates in the hundreds and thousands; the random slopes of x2 are a fixed
# combination of the other two (a rank-2 covariance), so the first seed whose lme4 optimum is
# a rank-deficient 3 x 3 block with all three sds non-zero is kept.
sim <- function(seed) {
  set.seed(seed)
  ng <- 12; m <- 8; g <- rep(sprintf("g%02d", 1:ng), each = m)
  x1 <- round(rnorm(ng * m, 500, 100), 1); x2 <- round(rnorm(ng * m, 2000, 400), 1)
  b0 <- rnorm(ng, 0, 1); b1 <- rnorm(ng, 0, 0.004)
  b2 <- 0.0005 * b0 - 0.5 * b1
  y <- 10 + 0.01 * x1 - 0.002 * x2 + b0[as.integer(factor(g))] + b1[as.integer(factor(g))] * x1 +
    b2[as.integer(factor(g))] * x2 + rnorm(ng * m, 0, 0.5)
  data.frame(g = g, x1 = x1, x2 = x2, y = round(y, 4))
}
for (seed in 1:200) {
  d3 <- sim(seed)
  m3 <- lmer(y ~ x1 + x2 + (1 + x1 + x2 | g), d3, control = bob)
  th <- getME(m3, "theta")
  sds <- as.data.frame(VarCorr(m3))$sdcor[1:3]
  if (th[6] < 1e-8 && all(sds > 1e-6)) break
}
write.csv(d3, file.path(out, "rank2_q3.csv"), row.names = FALSE)
# Two crossed factors (the derivative-free path), a slope on a covariate in the thousands.
set.seed(20261129)
nc <- 400
dc <- data.frame(g = sprintf("g%02d", sample(1:25, nc, TRUE)), h = sprintf("h%02d", sample(1:15, nc, TRUE)),
                 x = round(runif(nc, 1000, 5000)))
bg0 <- rnorm(25, 0, 2); bg1 <- rnorm(25, 0, 0.001); bh <- rnorm(15, 0, 1.5)
ig <- as.integer(factor(dc$g)); ih <- as.integer(factor(dc$h))
dc$y <- round(5 + 0.002 * dc$x + bg0[ig] + bg1[ig] * dc$x + bh[ih] + rnorm(nc, 0, 1), 4)
write.csv(dc, file.path(out, "crossed_thousands.csv"), row.names = FALSE)
ref <- list(
  crossed_thousands = one("y ~ x + (1 + x | g) + (1 | h)", dc),
  rank2_q3 = one("y ~ x1 + x2 + (1 + x1 + x2 | g)", d3),
  rank2_q3_seed = seed,
  spruce = one("logSize ~ days + plot + (days | Tree)", sp),
  spruce_ml = one("logSize ~ days + plot + (days | Tree)", sp, reml = FALSE),
  sleepstudy_days1000 = one("Reaction ~ D + (D | Subject)", ss)
)
write(toJSON(ref, auto_unbox = TRUE, digits = NA, pretty = TRUE), file.path(out, "hard_cases_lme4.json"))
