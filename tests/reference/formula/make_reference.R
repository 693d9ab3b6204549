# lme4 reference values for the formula language (offsets, weights, I(), transformed responses,
# poly, factor(), contrasts, names).  Run from this directory:
#     Rscript make_reference.R
# Writes one CSV per data set and reference.json (each case: formula, options, the levels of
# any factor whose order matters, lme4's REML and ML fits and colnames(model.matrix)).
suppressPackageStartupMessages({library(lme4); library(nlme); library(jsonlite)})
data(sleepstudy, cbpp, grouseticks, package = "lme4")
data(Orthodont, BodyWeight, package = "nlme")
data(Hsb82, package = "mlmRev")
data(ChickWeight, package = "datasets")
data(Pastes, package = "lme4")

plain <- function(d) {  # factors as text: the CSV carries values, reference.json the levels
  for (v in names(d)) if (is.factor(d[[v]])) d[[v]] <- as.character(d[[v]])
  as.data.frame(d, check.names = FALSE)
}
write_data <- function(d, name) {
  write.csv(plain(d), paste0(name, ".csv"), row.names = FALSE, fileEncoding = "UTF-8")
  name
}

sleep <- sleepstudy
sleep$off <- 2 * sleep$Days
sleep$w <- rep(1:3, length.out = nrow(sleep))
sleep$y_na <- sleep$Reaction
invisible(write_data(sleep, "sleepstudy"))

ortho <- as.data.frame(Orthodont)
ortho$Subject <- as.character(ortho$Subject)
invisible(write_data(ortho, "orthodont"))
invisible(write_data(grouseticks, "grouseticks"))
invisible(write_data(cbpp, "cbpp"))
bw <- as.data.frame(BodyWeight); bw$Rat <- as.character(bw$Rat)
invisible(write_data(bw, "bodyweight"))
chick <- as.data.frame(ChickWeight); chick$Chick <- as.character(chick$Chick)
chick$dietn <- as.numeric(chick$Diet)
invisible(write_data(chick, "chickweight"))
hsb <- Hsb82[Hsb82$school %in% levels(Hsb82$school)[seq(1, 160, by = 4)], ]
hsb$school <- as.character(hsb$school)
invisible(write_data(hsb, "hsb82"))
invisible(write_data(Pastes, "pastes"))

set.seed(20261129)
n <- 120
sim <- data.frame(g = rep(sprintf("g%02d", 1:12), each = 10),
                  a = rnorm(n), b = rnorm(n), c = rnorm(n),
                  dose = factor(sample(c("low", "mid", "high", "max"), n, TRUE),
                                levels = c("low", "mid", "high", "max"), ordered = TRUE),
                  arm = factor(sample(c("placebo", "drug"), n, TRUE), levels = c("placebo", "drug")),
                  site = sample(c("north", "south", "east"), n, TRUE),
                  check.names = FALSE)
sim[["patiënt"]] <- rep(sprintf("p%d", 1:20), each = 6)
sim[["dose mg"]] <- runif(n, 1, 10)
u <- rnorm(12)[as.integer(factor(sim$g))]
sim$y <- 1 + 0.5 * sim$a - 0.3 * sim$b + 0.2 * sim$a * sim$b + as.integer(sim$dose) * 0.4 +
  (sim$arm == "drug") * 0.7 + u + 0.1 * sim[["dose mg"]] + rnorm(n)
sim$case_mix <- rep(c("b", "A", "a", "B", "_x", "c"), length.out = n)  # R's collation of text levels
invisible(write_data(sim, "simulated"))

levels_of <- function(d, cols) {
  out <- list()
  for (v in cols) out[[v]] <- list(levels = levels(d[[v]]), ordered = is.ordered(d[[v]]))
  out
}

cases <- list(
  list(name = "offset_term", data = "sleepstudy", formula = "Reaction ~ Days + offset(off) + (Days | Subject)"),
  list(name = "offset_option", data = "sleepstudy", formula = "Reaction ~ Days + (Days | Subject)", offset = "off"),
  list(name = "offset_expr", data = "sleepstudy", formula = "Reaction ~ Days + offset(3 * Days + 10) + (1 | Subject)"),
  list(name = "weights", data = "sleepstudy", formula = "Reaction ~ Days + (Days | Subject)", weights = "w"),
  list(name = "weights_offset", data = "sleepstudy", formula = "Reaction ~ Days + (Days | Subject)", weights = "w", offset = "off"),
  list(name = "weights_intercept", data = "sleepstudy", formula = "Reaction ~ Days + (1 | Subject)", weights = "w"),
  list(name = "log_response", data = "sleepstudy", formula = "log(Reaction) ~ Days + (1 | Subject)"),
  list(name = "minus_one", data = "sleepstudy", formula = "Reaction ~ Days + (1 | Subject) - 1"),
  list(name = "plus_zero", data = "sleepstudy", formula = "Reaction ~ 0 + Days + (Days | Subject)"),
  list(name = "two_terms_one_factor", data = "sleepstudy", formula = "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)"),
  list(name = "I_square", data = "orthodont", formula = "distance ~ age + I(age^2) + Sex + (1 | Subject)", factors = "Sex"),
  list(name = "poly", data = "orthodont", formula = "distance ~ poly(age, 3) + Sex + (1 | Subject)", factors = "Sex"),
  list(name = "interaction_factor_numeric", data = "orthodont", formula = "distance ~ Sex * age + (age | Subject)", factors = "Sex"),
  list(name = "log_ticks", data = "grouseticks", formula = "log(TICKS + 1) ~ YEAR + scale(HEIGHT) + (1 | BROOD) + (1 | LOCATION)", factors = "YEAR"),
  list(name = "proportion_weights", data = "cbpp", formula = "incidence/size ~ period + (1 | herd)", weights = "size", factors = "period"),
  list(name = "sin_time", data = "bodyweight", formula = "weight ~ Time + sin(2 * pi * Time/64) + Diet + (1 | Rat)", factors = "Diet"),
  list(name = "factor_call", data = "chickweight", formula = "weight ~ Time + factor(dietn) + (1 | Chick)"),
  list(name = "factor_call_no_intercept", data = "chickweight", formula = "weight ~ 0 + factor(dietn) + Time + (1 | Chick)"),
  list(name = "contr_sum", data = "chickweight", formula = "weight ~ Time + Diet + (1 | Chick)", contrasts = list(Diet = "contr.sum"), factors = "Diet"),
  list(name = "contr_helmert", data = "chickweight", formula = "weight ~ Time * Diet + (1 | Chick)", contrasts = list(Diet = "contr.helmert"), factors = "Diet"),
  list(name = "interaction_order", data = "hsb82", formula = "mAch ~ meanses + cses * sector + (1 + cses | school)", factors = c("sector")),
  list(name = "interaction_order_reversed", data = "hsb82", formula = "mAch ~ sector * cses + (1 | school)", factors = c("sector")),
  list(name = "nested_labels", data = "pastes", formula = "strength ~ 1 + (1 | batch/cask)"),
  list(name = "ordered_poly", data = "simulated", formula = "y ~ dose + arm + (1 | g)", factors = c("dose", "arm")),
  list(name = "categorical_order", data = "simulated", formula = "y ~ arm + site + (1 | g)", factors = c("arm")),
  list(name = "power_terms", data = "simulated", formula = "y ~ (a + b + c)^2 + (1 | g)"),
  list(name = "in_operator", data = "simulated", formula = "y ~ a + b %in% site + (1 | g)"),
  list(name = "nesting_slash", data = "simulated", formula = "y ~ site/a + (1 | g)"),
  list(name = "backtick_names", data = "simulated", formula = "y ~ `dose mg` + a:b + b:a + (1 | patiënt)"),
  list(name = "non_ascii_group", data = "simulated", formula = "y ~ a + (a | patiënt) + (1 | g)"),
  list(name = "as_numeric", data = "chickweight", formula = "weight ~ Time + as.numeric(Diet) + (1 | Chick)", factors = "Diet"),
  list(name = "functions", data = "simulated", formula = "y ~ I(a > 0) + log1p(abs(b)) + exp(c/2) + sqrt(abs(a)) + cos(b) + (1 | g)"),
  list(name = "text_level_order", data = "simulated", formula = "y ~ case_mix + (1 | g)"),
  list(name = "factor_random_slope", data = "simulated", formula = "y ~ arm + (0 + arm | g)", factors = c("arm"))
)

datasets <- list(sleepstudy = sleep, orthodont = ortho, grouseticks = grouseticks, cbpp = cbpp,
                 bodyweight = bw, chickweight = chick, hsb82 = hsb, pastes = Pastes,
                 simulated = sim)

fit_one <- function(case, reml) {
  d <- datasets[[case$data]]
  args <- list(formula = as.formula(case$formula), data = d, REML = reml,
               control = lmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5)))
  if (!is.null(case$weights)) args$weights <- d[[case$weights]]
  if (!is.null(case$offset)) args$offset <- d[[case$offset]]
  if (!is.null(case$contrasts)) args$contrasts <- case$contrasts
  m <- do.call(lmer, args)
  vc <- as.data.frame(VarCorr(m))
  re <- as.data.frame(ranef(m, condVar = TRUE))
  list(criterion = if (reml) REMLcrit(m) else deviance(m),
       beta = as.list(fixef(m)),
       beta_se = as.list(setNames(sqrt(diag(as.matrix(vcov(m)))), names(fixef(m)))),
       sigma = sigma(m),
       varcorr = lapply(seq_len(nrow(vc)), function(i) list(grp = vc$grp[i], var1 = vc$var1[i],
                       var2 = vc$var2[i], vcov = vc$vcov[i], sdcor = vc$sdcor[i])),
       ranef = list(group = as.character(re$grpvar), term = as.character(re$term),
                    level = as.character(re$grp), value = re$condval, cond_sd = re$condsd),
       ngroups = as.list(ngrps(m)),
       nobs = nobs(m))
}

out <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")), cases = list())
for (case in cases) {
  d <- datasets[[case$data]]
  fx <- lme4::nobars(as.formula(case$formula))
  mm_args <- list(object = fx, data = d)
  if (!is.null(case$contrasts)) mm_args$contrasts.arg <- case$contrasts
  entry <- case
  entry$colnames <- I(colnames(do.call(model.matrix, mm_args)))
  if (!is.null(case$factors)) entry$factors <- levels_of(d, case$factors)
  entry$reml <- fit_one(case, TRUE)
  entry$ml <- fit_one(case, FALSE)
  out$cases[[case$name]] <- entry
}

# Profile intervals (lme4's confint(method = "profile")) with an offset, and with weights and an
# offset.  lme4 1.1-31 profiles the fixed effects of a weighted fit wrongly (it warns
# "non-monotonic profile" and its intervals are narrower than Wald's by a factor of ~25), so for
# that fit only the variance parameters are reference values.
profile_of <- function(m) {
  ci <- suppressWarnings(confint(m, method = "profile", oldNames = FALSE))
  list(parameter = rownames(ci), lower = ci[, 1], upper = ci[, 2])
}
out$profile_offset <- profile_of(lmer(Reaction ~ Days + (Days | Subject), data = sleep, offset = off))
out$profile_weights_offset <- profile_of(lmer(Reaction ~ Days + (Days | Subject), data = sleep,
                                              weights = w, offset = off))

# No random-effects term: nlme::gls (no correlation) gives -2 logLik for REML and ML.
gls_cases <- list(
  list(name = "lm_complete_pooling", data = "sleepstudy", formula = "Reaction ~ Days"),
  list(name = "lm_no_pooling", data = "sleepstudy", formula = "Reaction ~ 0 + factor(Subject) + Days"),
  list(name = "lm_weights", data = "sleepstudy", formula = "Reaction ~ Days", weights = "w")
)
for (case in gls_cases) {
  d <- datasets[[case$data]]
  entry <- case
  for (meth in c("REML", "ML")) {
    args <- list(model = as.formula(case$formula), data = d, method = meth)
    if (!is.null(case$weights)) {
      d$.ivar <- 1 / d[[case$weights]]
      args$data <- d
      args$weights <- varFixed(~ .ivar)
    }
    g <- do.call(gls, args)
    entry[[tolower(meth)]] <- list(criterion = -2 * as.numeric(logLik(g)),
                                   beta = as.list(coef(g)),
                                   beta_se = as.list(sqrt(diag(vcov(g)))),
                                   sigma = g$sigma)
  }
  entry$colnames <- I(names(coef(lm(as.formula(case$formula), data = d))))
  out$gls_cases[[case$name]] <- entry
}
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null", na = "null"),
           "reference.json", useBytes = TRUE)
cat("wrote reference.json:", length(out$cases), "lme4 cases,", length(out$gls_cases), "gls cases\n")

# R's terms(): term labels and intercept of right-hand sides, for the expansion rules.
rhs <- c("a + b", "b + a + a:b", "a*b", "b*a", "(a + b + c)^2", "(a + b + c)^3 - a:b:c", "a/b", "a/(b + c)",
         "b %in% a", "a + b %in% a", "a*b - a", "0 + a", "a - 1", "-1 + a", "a + 0", "1", "a + 1",
         "c:b + a*b", "I(a^2) + a", "log(a + 1):b", "poly(a, 2)*b", "a:b:c + a", "a*b*c - b:c",
         "`a b` + c", "a + a", "(a + b)^2 - 1")
out <- lapply(rhs, function(r) { t <- terms(as.formula(paste("y ~", r)))
  list(rhs = r, labels = I(attr(t, "term.labels")), intercept = attr(t, "intercept") == 1) })
writeLines(toJSON(out, auto_unbox = TRUE, pretty = TRUE), "terms.json")
cat("wrote terms.json:", length(out), "right-hand sides\n")
