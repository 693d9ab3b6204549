# Reference values for the verbs on a fit (predict, fitted, residuals, vcov, confint Wald,
# anova with Satterthwaite and Kenward-Roger denominator df).
# Run from this directory: Rscript make_reference.R  (R 4.2.2, lme4 1.1-31, lmerTest, pbkrtest)
# Writes the data sets (CSV) and verbs_reference.json beside this script.
suppressPackageStartupMessages({
  library(lme4); library(lmerTest); library(pbkrtest); library(jsonlite); library(nlme)
})
data(Machines, package = "nlme")
data(Oats, package = "nlme")
sleep <- lme4::sleepstudy
machines <- data.frame(Worker = factor(as.character(Machines$Worker)),
                       Machine = factor(as.character(Machines$Machine)), score = Machines$score)
oats <- data.frame(Block = factor(as.character(Oats$Block)),
                   Variety = factor(as.character(Oats$Variety)), nitro = Oats$nitro,
                   yield = Oats$yield)
# an unbalanced design: rows dropped by a fixed pattern
machines_unb <- machines[-c(1, 2, 7, 20, 21, 33, 40, 41, 52), ]
sleep_unb <- sleep[-c(3, 11, 12, 25, 40, 41, 42, 77, 100, 130, 131, 160), ]
write.csv(machines, "machines.csv", row.names = FALSE)
write.csv(oats, "oats.csv", row.names = FALSE)
write.csv(machines_unb, "machines_unb.csv", row.names = FALSE)
write.csv(sleep_unb, "sleepstudy_unb.csv", row.names = FALSE)

models <- list(
  list(name = "sleepstudy", data = "sleepstudy", df = sleep,
       formula = "Reaction ~ Days + (Days | Subject)"),
  list(name = "sleepstudy_unb_quad", data = "sleepstudy_unb.csv", df = sleep_unb,
       formula = "Reaction ~ Days + I(Days^2) + (Days | Subject)"),
  list(name = "machines", data = "machines.csv", df = machines,
       formula = "score ~ Machine + (1 | Worker) + (1 | Worker:Machine)"),
  list(name = "machines_unb", data = "machines_unb.csv", df = machines_unb,
       formula = "score ~ Machine + (1 | Worker) + (1 | Worker:Machine)"),
  list(name = "oats", data = "oats.csv", df = oats,
       formula = "yield ~ factor(nitro) + Variety + (1 | Block/Variety)"),
  # an interaction under sum contrasts: lmerTest's type III tests are then the tests of each
  # term's own columns
  list(name = "oats_interaction_sum", data = "oats.csv", df = oats, sum = TRUE,
       formula = "yield ~ factor(nitro) * Variety + (1 | Block/Variety)")
)

out <- list()
for (m in models) {
  old <- options(contrasts = if (isTRUE(m$sum)) c("contr.sum", "contr.poly")
                            else c("contr.treatment", "contr.poly"))
  fit <- lmerTest::lmer(as.formula(m$formula), data = m$df, REML = TRUE)
  a_s <- anova(fit, ddf = "Satterthwaite", type = 3)
  a_k <- anova(fit, ddf = "Kenward-Roger", type = 3)
  V <- as.matrix(vcov(fit))
  Vkr <- as.matrix(pbkrtest::vcovAdj(fit))
  ci <- confint(fit, method = "Wald", level = 0.95)
  ci <- ci[rownames(ci) %in% names(fixef(fit)), , drop = FALSE]
  rec <- list(
    name = m$name, data = m$data, formula = m$formula,
    fixef = as.list(fixef(fit)),
    vcov = V, vcov_names = colnames(V), vcov_kr = Vkr,
    fitted = unname(fitted(fit)), residuals = unname(residuals(fit)),
    residuals_pearson = unname(residuals(fit, type = "pearson")),
    confint_wald = list(names = rownames(ci), lower = unname(ci[, 1]), upper = unname(ci[, 2])),
    anova_satterthwaite = list(term = rownames(a_s), NumDF = a_s$NumDF, DenDF = a_s$DenDF,
                               F = a_s[["F value"]], p = a_s[["Pr(>F)"]]),
    anova_kenward_roger = list(term = rownames(a_k), NumDF = a_k$NumDF, DenDF = a_k$DenDF,
                               F = a_k[["F value"]], p = a_k[["Pr(>F)"]])
  )
  if (m$name == "sleepstudy") {
    nd <- data.frame(Days = c(0, 2.5, 9, 4, 7), Subject = c("308", "335", "372", "new1", "new2"))
    rec$newdata <- nd
    rec$predict_conditional <- unname(predict(fit, newdata = nd, allow.new.levels = TRUE))
    rec$predict_marginal <- unname(predict(fit, newdata = nd, re.form = NA))
    rec$predict_train_conditional <- unname(predict(fit))
  }
  if (m$name == "oats") {
    nd <- data.frame(nitro = c(0, 0.6, 0.2), Variety = c("Victory", "Marvellous", "Golden Rain"),
                     Block = c("I", "VI", "VII"))
    rec$newdata <- nd
    rec$predict_conditional <- unname(predict(fit, newdata = nd, allow.new.levels = TRUE))
    rec$predict_marginal <- unname(predict(fit, newdata = nd, re.form = NA))
    rec$predict_block_only <- unname(predict(fit, newdata = nd, re.form = ~ (1 | Block),
                                             allow.new.levels = TRUE))
  }
  options(old)
  out[[m$name]] <- rec
}
# an offset in the formula
sleep_off <- sleep
sleep_off$exposure <- 1 + (as.integer(sleep$Subject) %% 3) / 10
fit <- lmer(Reaction ~ Days + offset(10 * exposure) + (1 | Subject), data = sleep_off)
nd <- data.frame(Days = c(1, 5), Subject = c("309", "new"), exposure = c(1.5, 2))
out[["sleepstudy_offset"]] <- list(
  name = "sleepstudy_offset", formula = "Reaction ~ Days + offset(10 * exposure) + (1 | Subject)",
  newdata = nd, fixef = as.list(fixef(fit)),
  predict_conditional = unname(predict(fit, newdata = nd, allow.new.levels = TRUE)),
  predict_marginal = unname(predict(fit, newdata = nd, re.form = NA)),
  fitted = unname(fitted(fit)))
out$meta <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                 lmerTest = as.character(packageVersion("lmerTest")),
                 pbkrtest = as.character(packageVersion("pbkrtest")))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, matrix = "rowmajor"), "verbs_reference.json")
