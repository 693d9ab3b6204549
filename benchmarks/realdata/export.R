# Real-data cross-check: export models' data from the R packages Debian ships, with lme4's fits.
#
#   Rscript benchmarks/realdata/export.R            # all models
#   Rscript benchmarks/realdata/export.R --small    # skip the big data sets (InstEval, STAR, Chem97)
#   Rscript benchmarks/realdata/export.R --only sleepstudy,spruce
#
# Needs (Debian): r-base-core r-cran-lme4 r-cran-nlme r-cran-mlmrev r-cran-lmertest r-cran-mass
# r-cran-plm r-cran-jsonlite.
#
# For every data set: one CSV with only the columns its models use (complete cases, factors as
# strings, derived columns such as log(TICKS + 1) precomputed under plain names). Small data sets
# go to data/ (committed), big ones to big/ (git-ignored; this script regenerates them).
# Every model is fitted by lme4 from the CSV as read back (so R and Python see the same numbers),
# with factor levels in C-locale order (Python's order; ordered factors made unordered, so every
# factor has treatment contrasts), REML and ML, with
#   - lme4's default controls: the fit and its elapsed and CPU time (median of several runs);
#   - tight tolerances (nloptwrap and bobyqa, the lower criterion kept as "tight").
# All of it goes to references.json beside this script.

suppressMessages({
  library(lme4); library(jsonlite); library(nlme, exclude = "lmList")
  library(mlmRev); library(lmerTest, exclude = "lmer"); library(MASS); library(plm)
})

args <- commandArgs(TRUE)
file_arg <- grep("^--file=", commandArgs(FALSE), value = TRUE)
HERE <- if (length(file_arg)) dirname(normalizePath(sub("^--file=", "", file_arg))) else "."
SMALL_ONLY <- "--small" %in% args
ONLY <- if (any(args == "--only")) strsplit(args[which(args == "--only") + 1], ",")[[1]] else NULL
BIG_ROWS <- 4000  # data sets with more rows are not committed (hsb82, mathachieve, egsingle, exam, ...)

getd <- function(name, pkg) {
  e <- new.env(); data(list = name, package = pkg, envir = e)
  as.data.frame(e[[name]], stringsAsFactors = FALSE)
}
unfactor <- function(d) {
  for (c in names(d)) {
    if (is.factor(d[[c]])) d[[c]] <- as.character(d[[c]])
  }
  d
}

# Data sets: a function returning a data frame with the columns used, and the factor columns.
DATA <- list(
  sleepstudy = list(pkg = "lme4", f = function() getd("sleepstudy", "lme4"),
                    factors = "Subject"),
  sleepstudy1000 = list(pkg = "lme4", note = "D = Days * 1000",
                        f = function() { d <- getd("sleepstudy", "lme4")
                          data.frame(Reaction = d$Reaction, D = d$Days * 1000, Subject = d$Subject) },
                        factors = "Subject"),
  dyestuff = list(pkg = "lme4", f = function() getd("Dyestuff", "lme4"), factors = "Batch"),
  dyestuff2 = list(pkg = "lme4", f = function() getd("Dyestuff2", "lme4"), factors = "Batch"),
  penicillin = list(pkg = "lme4", f = function() getd("Penicillin", "lme4"),
                    factors = c("plate", "sample")),
  pastes = list(pkg = "lme4", f = function() getd("Pastes", "lme4")[, c("strength", "batch", "cask")],
                factors = c("batch", "cask")),
  cake = list(pkg = "lme4", f = function() getd("cake", "lme4")[, c("angle", "recipe", "replicate", "temp")],
              factors = c("recipe", "replicate")),
  cbpp = list(pkg = "lme4", note = "prop = incidence / size",
              f = function() { d <- getd("cbpp", "lme4")
                data.frame(prop = d$incidence / d$size, period = d$period, herd = d$herd) },
              factors = c("period", "herd")),
  grouseticks = list(pkg = "lme4", note = "ltick = log(TICKS + 1)",
                     f = function() { d <- getd("grouseticks", "lme4")
                       data.frame(ltick = log(d$TICKS + 1), YEAR = d$YEAR, HEIGHT = d$HEIGHT,
                                  BROOD = d$BROOD, LOCATION = d$LOCATION) },
                     factors = c("YEAR", "BROOD", "LOCATION")),
  arabidopsis = list(pkg = "lme4", note = "lfruit = log(total.fruits + 1); nut8 = (nutrient == 8)",
                     f = function() { d <- getd("Arabidopsis", "lme4")
                       data.frame(lfruit = log(d$total.fruits + 1), nutrient = d$nutrient,
                                  nut8 = as.numeric(as.character(d$nutrient) == "8"), amd = d$amd,
                                  rack = d$rack, status = d$status, reg = d$reg, popu = d$popu,
                                  gen = d$gen) },
                     factors = c("nutrient", "amd", "rack", "status", "reg", "popu", "gen")),
  insteval = list(pkg = "lme4", f = function() getd("InstEval", "lme4")[, c("y", "service", "s", "d", "dept")],
                  factors = c("service", "s", "d", "dept")),
  orthodont = list(pkg = "nlme", f = function() getd("Orthodont", "nlme"),
                   factors = c("Subject", "Sex")),
  oxboys = list(pkg = "nlme", f = function() getd("Oxboys", "nlme")[, c("height", "age", "Subject")],
                factors = "Subject"),
  machines = list(pkg = "nlme", note = "MB, MC: indicators of Machine B and C (lme4's (Machine | Worker))",
                  f = function() { d <- getd("Machines", "nlme")
                    data.frame(score = d$score, Machine = d$Machine, Worker = d$Worker,
                               MB = as.numeric(d$Machine == "B"), MC = as.numeric(d$Machine == "C")) },
                  factors = c("Machine", "Worker")),
  rail = list(pkg = "nlme", f = function() getd("Rail", "nlme"), factors = "Rail"),
  ergostool = list(pkg = "nlme", f = function() getd("ergoStool", "nlme"),
                   factors = c("Type", "Subject")),
  oats_nlme = list(pkg = "nlme", f = function() getd("Oats", "nlme"),
                   factors = c("Block", "Variety")),
  pixel = list(pkg = "nlme", note = "day2 = day^2",
               f = function() { d <- getd("Pixel", "nlme")
                 data.frame(pixel = d$pixel, day = d$day, day2 = d$day^2, Dog = d$Dog, Side = d$Side) },
               factors = c("Dog", "Side")),
  spruce = list(pkg = "nlme", f = function() getd("Spruce", "nlme")[, c("logSize", "days", "plot", "Tree")],
                factors = c("plot", "Tree")),
  bodyweight = list(pkg = "nlme", f = function() getd("BodyWeight", "nlme")[, c("weight", "Time", "Diet", "Rat")],
                    factors = c("Diet", "Rat")),
  mathachieve = list(pkg = "nlme",
                     f = function() getd("MathAchieve", "nlme")[, c("MathAch", "SES", "Minority", "Sex", "MEANSES", "School")],
                     factors = c("Minority", "Sex", "School")),
  milk = list(pkg = "nlme", f = function() getd("Milk", "nlme")[, c("protein", "Time", "Diet", "Cow")],
              factors = c("Diet", "Cow")),
  alfalfa = list(pkg = "nlme", f = function() getd("Alfalfa", "nlme"),
                 factors = c("Variety", "Date", "Block")),
  assay = list(pkg = "nlme", f = function() getd("Assay", "nlme"),
               factors = c("Block", "sample", "dilut")),
  gun = list(pkg = "nlme", f = function() getd("Gun", "nlme")[, c("rounds", "Method", "Team")],
             factors = c("Method", "Team")),
  igf = list(pkg = "nlme", f = function() getd("IGF", "nlme"), factors = "Lot"),
  ovary = list(pkg = "nlme", note = "st = sin(2 pi Time), ct = cos(2 pi Time)",
               f = function() { d <- getd("Ovary", "nlme")
                 data.frame(follicles = d$follicles, st = sin(2 * pi * d$Time),
                            ct = cos(2 * pi * d$Time), Mare = d$Mare) },
               factors = "Mare"),
  dialyzer = list(pkg = "nlme", f = function() getd("Dialyzer", "nlme")[, c("rate", "pressure", "QB", "Subject")],
                  factors = c("QB", "Subject")),
  wheat2 = list(pkg = "nlme", f = function() getd("Wheat2", "nlme")[, c("yield", "variety", "Block")],
                factors = c("variety", "Block")),
  pbg = list(pkg = "nlme", f = function() getd("PBG", "nlme")[, c("deltaBP", "dose", "Treatment", "Rabbit")],
             factors = c("Treatment", "Rabbit")),
  wafer = list(pkg = "nlme", note = "v2 = voltage^2",
               f = function() { d <- getd("Wafer", "nlme")
                 data.frame(current = d$current, voltage = d$voltage, v2 = d$voltage^2,
                            Wafer = d$Wafer, Site = d$Site) },
               factors = c("Wafer", "Site")),
  exam = list(pkg = "mlmRev",
              f = function() getd("Exam", "mlmRev")[, c("normexam", "standLRT", "sex", "schgend", "school")],
              factors = c("sex", "schgend", "school")),
  hsb82 = list(pkg = "mlmRev", f = function() getd("Hsb82", "mlmRev")[, c("mAch", "meanses", "cses", "sector", "school")],
               factors = c("sector", "school")),
  gcsemv = list(pkg = "mlmRev", f = function() getd("Gcsemv", "mlmRev")[, c("written", "gender", "school")],
                factors = c("gender", "school")),
  early = list(pkg = "mlmRev", f = function() getd("Early", "mlmRev")[, c("cog", "age", "trt", "id")],
               factors = c("trt", "id")),
  scotssec = list(pkg = "mlmRev",
                  f = function() getd("ScotsSec", "mlmRev")[, c("attain", "verbal", "sex", "social", "primary", "second")],
                  factors = c("sex", "social", "primary", "second")),
  bdf = list(pkg = "mlmRev", note = "IQverb = IQ.verb",
             f = function() { d <- getd("bdf", "mlmRev")
               data.frame(langPOST = d$langPOST, IQverb = d$IQ.verb, sex = d$sex, schoolNR = d$schoolNR) },
             factors = c("sex", "schoolNR")),
  egsingle = list(pkg = "mlmRev", f = function() getd("egsingle", "mlmRev")[, c("math", "year", "childid", "schoolid")],
                  factors = c("childid", "schoolid")),
  chem97 = list(pkg = "mlmRev", f = function() getd("Chem97", "mlmRev")[, c("score", "gcsescore", "gender", "school", "lea")],
                factors = c("gender", "school", "lea")),
  star = list(pkg = "mlmRev", f = function() getd("star", "mlmRev")[, c("math", "gr", "sx", "eth", "cltype", "id", "tch", "sch")],
              factors = c("gr", "sx", "eth", "cltype", "id", "tch", "sch")),
  ham = list(pkg = "lmerTest", note = "liking = Informed.liking",
             f = function() { d <- getd("ham", "lmerTest")
               data.frame(liking = d$Informed.liking, Product = d$Product,
                          Information = d$Information, Consumer = d$Consumer) },
             factors = c("Product", "Information", "Consumer")),
  carrots = list(pkg = "lmerTest",
                 f = function() getd("carrots", "lmerTest")[, c("Preference", "sens2", "Homesize", "Consumer", "Product")],
                 factors = c("Homesize", "Consumer", "Product")),
  tvbo = list(pkg = "lmerTest",
              f = function() getd("TVbo", "lmerTest")[, c("Coloursaturation", "TVset", "Picture", "Assessor")],
              factors = c("TVset", "Picture", "Assessor")),
  oats_mass = list(pkg = "MASS", f = function() getd("oats", "MASS"), factors = c("B", "V", "N")),
  sitka = list(pkg = "MASS", f = function() getd("Sitka", "MASS"), factors = c("tree", "treat")),
  petrol = list(pkg = "MASS", f = function() getd("petrol", "MASS")[, c("Y", "SG", "VP", "V10", "EP", "No")],
                factors = "No"),
  chickweight = list(pkg = "datasets", f = function() getd("ChickWeight", "datasets"),
                     factors = c("Chick", "Diet")),
  co2 = list(pkg = "datasets", f = function() getd("CO2", "datasets")[, c("uptake", "conc", "Type", "Treatment", "Plant")],
             factors = c("Type", "Treatment", "Plant")),
  orange = list(pkg = "datasets", f = function() getd("Orange", "datasets"), factors = "Tree"),
  loblolly = list(pkg = "datasets", f = function() getd("Loblolly", "datasets"), factors = "Seed"),
  grunfeld = list(pkg = "plm", f = function() getd("Grunfeld", "plm"), factors = c("firm", "year")),
  produc = list(pkg = "plm", note = "lgsp = log(gsp), lpcap = log(pcap), lpc = log(pc), lemp = log(emp)",
                f = function() { d <- getd("Produc", "plm")
                  data.frame(lgsp = log(d$gsp), lpcap = log(d$pcap), lpc = log(d$pc), lemp = log(d$emp),
                             unemp = d$unemp, state = d$state, region = d$region) },
                factors = c("state", "region"))
)

# Models: name, data set, formula (in the workbench's syntax), lme4's usual spelling where it differs.
M <- function(name, data, formula, original = NULL, note = NULL)
  list(name = name, data = data, formula = formula, original = original, note = note)
MODELS <- list(
  M("sleepstudy", "sleepstudy", "Reaction ~ Days + (Days | Subject)"),
  M("sleepstudy_uncor", "sleepstudy", "Reaction ~ Days + (Days || Subject)"),
  M("sleepstudy_days1000", "sleepstudy1000", "Reaction ~ D + (D | Subject)",
    note = "Days * 1000: the same model as sleepstudy"),
  M("dyestuff", "dyestuff", "Yield ~ 1 + (1 | Batch)"),
  M("dyestuff2", "dyestuff2", "Yield ~ 1 + (1 | Batch)"),
  M("penicillin", "penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)"),
  M("pastes", "pastes", "strength ~ 1 + (1 | batch/cask)"),
  M("cake", "cake", "angle ~ recipe * temp + (1 | recipe:replicate)"),
  M("cbpp", "cbpp", "prop ~ period + (1 | herd)", "incidence / size ~ period + (1 | herd)"),
  M("grouseticks", "grouseticks", "ltick ~ YEAR + HEIGHT + (1 | BROOD) + (1 | LOCATION)",
    "log(TICKS + 1) ~ YEAR + HEIGHT + (1 | BROOD) + (1 | LOCATION)"),
  M("arabidopsis_nested", "arabidopsis", "lfruit ~ nutrient + amd + rack + status + (1 | reg) + (1 | popu) + (1 | gen)",
    "log(total.fruits + 1) ~ nutrient + amd + rack + status + (1 | reg) + (1 | popu) + (1 | gen)"),
  M("arabidopsis_slopes", "arabidopsis", "lfruit ~ nut8 + amd + rack + status + (nut8 | popu) + (nut8 | gen)",
    "log(total.fruits + 1) ~ nutrient + amd + rack + status + (nutrient | popu) + (nutrient | gen)"),
  M("insteval2", "insteval", "y ~ 1 + service + (1 | s) + (1 | d)"),
  M("insteval3", "insteval", "y ~ 1 + service + (1 | s) + (1 | d) + (1 | dept:service)"),
  M("orthodont_slopes", "orthodont", "distance ~ age + Sex + (age | Subject)"),
  M("orthodont_int", "orthodont", "distance ~ age * Sex + (1 | Subject)"),
  M("oxboys", "oxboys", "height ~ age + (age | Subject)"),
  M("machines_nested", "machines", "score ~ Machine + (1 | Worker) + (1 | Worker:Machine)"),
  M("machines_q3", "machines", "score ~ Machine + (1 + MB + MC | Worker)", "score ~ Machine + (Machine | Worker)"),
  M("rail", "rail", "travel ~ 1 + (1 | Rail)"),
  M("ergostool", "ergostool", "effort ~ Type + (1 | Subject)"),
  M("oats_nlme", "oats_nlme", "yield ~ nitro + Variety + (1 | Block/Variety)"),
  M("pixel", "pixel", "pixel ~ day + day2 + (day | Dog) + (1 | Dog:Side)",
    "pixel ~ day + I(day^2) + (day | Dog) + (1 | Dog:Side)"),
  M("spruce", "spruce", "logSize ~ days + plot + (days | Tree)", note = "days unscaled (152-674)"),
  M("bodyweight", "bodyweight", "weight ~ Time * Diet + (Time | Rat)"),
  M("mathachieve", "mathachieve", "MathAch ~ SES + Minority + Sex + MEANSES + (SES | School)"),
  M("milk_int", "milk", "protein ~ Time + Diet + (1 | Cow)"),
  M("milk_slopes", "milk", "protein ~ Time + Diet + (Time | Cow)"),
  M("alfalfa", "alfalfa", "Yield ~ Date + Variety + (1 | Block/Variety)"),
  M("assay", "assay", "logDens ~ sample + dilut + (1 | Block) + (1 | Block:sample) + (1 | Block:dilut)"),
  M("gun", "gun", "rounds ~ Method + (1 | Team)"),
  M("igf", "igf", "conc ~ age + (age | Lot)"),
  M("ovary", "ovary", "follicles ~ st + ct + (1 | Mare)",
    "follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time) + (1 | Mare)"),
  M("dialyzer", "dialyzer", "rate ~ pressure + QB + (pressure | Subject)"),
  M("wheat2", "wheat2", "yield ~ variety + (1 | Block)"),
  M("pbg", "pbg", "deltaBP ~ dose * Treatment + (dose | Rabbit)", note = "dose unscaled (6.25-200)"),
  M("wafer", "wafer", "current ~ voltage + v2 + (1 | Wafer/Site)",
    "current ~ voltage + I(voltage^2) + (1 | Wafer/Site)"),
  M("exam", "exam", "normexam ~ standLRT + sex + schgend + (standLRT | school)"),
  M("hsb82", "hsb82", "mAch ~ meanses * cses + sector + (cses | school)"),
  M("gcsemv", "gcsemv", "written ~ gender + (1 | school)"),
  M("early", "early", "cog ~ age * trt + (age | id)"),
  M("scotssec", "scotssec", "attain ~ verbal + sex + social + (1 | primary) + (1 | second)"),
  M("bdf", "bdf", "langPOST ~ IQverb + sex + (IQverb | schoolNR)", "langPOST ~ IQ.verb + sex + (IQ.verb | schoolNR)"),
  M("egsingle", "egsingle", "math ~ year + (year | childid) + (year | schoolid)"),
  M("chem97", "chem97", "score ~ gcsescore + gender + (1 | school) + (1 | lea)"),
  M("star", "star", "math ~ gr + sx + eth + cltype + (1 | id) + (1 | tch) + (1 | sch)"),
  M("ham", "ham", "liking ~ Product * Information + (1 | Consumer) + (1 | Consumer:Product)",
    "Informed.liking ~ Product * Information + (1 | Consumer) + (1 | Consumer:Product)"),
  M("carrots", "carrots", "Preference ~ sens2 + Homesize + (1 + sens2 | Consumer) + (1 | Product)"),
  M("tvbo", "tvbo", "Coloursaturation ~ TVset * Picture + (1 | Assessor) + (1 | Assessor:TVset) + (1 | Assessor:Picture)"),
  M("oats_mass", "oats_mass", "Y ~ N + V + (1 | B/V)"),
  M("sitka", "sitka", "size ~ Time + treat + (Time | tree)", note = "Time unscaled (152-258)"),
  M("petrol", "petrol", "Y ~ SG + VP + V10 + EP + (1 | No)"),
  M("chickweight", "chickweight", "weight ~ Time + Diet + (Time | Chick)"),
  M("co2", "co2", "uptake ~ conc + Type * Treatment + (conc | Plant)", note = "conc unscaled (95-1000)"),
  M("orange", "orange", "circumference ~ age + (age | Tree)", note = "age unscaled (118-1582)"),
  M("loblolly", "loblolly", "height ~ age + (age | Seed)"),
  M("grunfeld", "grunfeld", "inv ~ value + capital + (1 | firm)", note = "value, capital unscaled (thousands)"),
  M("grunfeld_crossed", "grunfeld", "inv ~ value + capital + (1 | firm) + (1 | year)"),
  M("produc", "produc", "lgsp ~ lpcap + lpc + lemp + unemp + (1 | region/state)",
    "log(gsp) ~ log(pcap) + log(pc) + log(emp) + unemp + (1 | region/state)")
)

CTL_TIGHT_NLOPT <- lmerControl(optimizer = "nloptwrap", calc.derivs = FALSE,
                               check.conv.singular = "ignore",
                               optCtrl = list(xtol_abs = 1e-13, ftol_abs = 1e-13, xtol_rel = 1e-13,
                                              ftol_rel = 1e-15, maxeval = 100000))
CTL_TIGHT_BOBYQA <- lmerControl(optimizer = "bobyqa", calc.derivs = FALSE,
                                check.conv.singular = "ignore",
                                optCtrl = list(rhoend = 1e-12, maxfun = 100000))

# Columns a formula uses (response, fixed and grouping variables).
used_columns <- function(formula, d) intersect(all.vars(as.formula(formula)), names(d))

read_back <- function(path, factors) {
  cc <- setNames(rep("character", length(factors)), factors)
  d <- read.csv(path, colClasses = cc)
  for (c in factors) d[[c]] <- factor(d[[c]], levels = sort(unique(d[[c]]), method = "radix"))
  d
}

crit_of <- function(m) unname(m@devcomp$cmp[if (isREML(m)) "REML" else "dev"])

extract <- function(m, warnings) {
  vc <- as.data.frame(VarCorr(m))
  se <- sqrt(diag(as.matrix(vcov(m))))
  list(criterion = crit_of(m), theta = unname(getME(m, "theta")),
       beta = as.list(fixef(m)), beta_se = as.list(setNames(se, names(fixef(m)))),
       sigma = sigma(m),
       varcorr = lapply(seq_len(nrow(vc)), function(i) list(
         grp = vc$grp[i], var1 = vc$var1[i], var2 = vc$var2[i], vcov = vc$vcov[i], sdcor = vc$sdcor[i])),
       singular = isSingular(m), optimizer = m@optinfo$optimizer, feval = m@optinfo$feval,
       conv_messages = as.list(m@optinfo$conv$lme4$messages),
       warnings = as.list(unique(c(unlist(m@optinfo$warnings), warnings))))
}

# Fit once, collecting warnings and messages instead of printing them.
fit_quiet <- function(formula, d, REML, control) {
  w <- character()
  m <- withCallingHandlers(
    lmer(as.formula(formula), d, REML = REML, control = control),
    warning = function(c) { w <<- c(w, conditionMessage(c)); invokeRestart("muffleWarning") },
    message = function(c) { w <<- c(w, trimws(conditionMessage(c))); invokeRestart("muffleMessage") })
  list(m = m, warnings = w)
}

time_fit <- function(formula, d, REML, control, reps) {
  el <- cpu <- numeric(reps)
  for (i in seq_len(reps)) {
    t <- suppressWarnings(suppressMessages(system.time(
      lmer(as.formula(formula), d, REML = REML, control = control))))
    el[i] <- t[["elapsed"]]; cpu[i] <- t[["user.self"]] + t[["sys.self"]]
  }
  list(elapsed = median(el), cpu = median(cpu), reps = reps)
}

out_path <- file.path(HERE, "references.json")
old <- if (file.exists(out_path)) fromJSON(out_path, simplifyVector = FALSE) else list()
refs <- if (!is.null(ONLY) && length(old$models)) old$models else list()

data_done <- list()
for (mod in MODELS) {
  if (!is.null(ONLY) && !(mod$name %in% ONLY)) next
  ds <- DATA[[mod$data]]
  raw <- ds$f()
  big <- nrow(raw) > BIG_ROWS
  if (big && SMALL_ONLY) next
  # all columns used by any model of this data set, so that one CSV serves them all
  cols <- unique(unlist(lapply(Filter(function(x) x$data == mod$data, MODELS),
                               function(x) used_columns(x$formula, raw))))
  rel <- file.path(if (big) "big" else "data", paste0(mod$data, ".csv"))
  path <- file.path(HERE, rel)
  if (is.null(data_done[[mod$data]])) {
    d0 <- unfactor(raw[, cols, drop = FALSE])
    d0 <- d0[complete.cases(d0), , drop = FALSE]
    dir.create(dirname(path), showWarnings = FALSE)
    write.csv(d0, path, row.names = FALSE)
    data_done[[mod$data]] <- TRUE
  }
  factors <- intersect(ds$factors, cols)
  d <- read_back(path, factors)
  n <- nrow(d)
  reps <- if (n < 2000) 7 else if (n < 20000) 3 else 1
  cat(sprintf("%-22s %7d rows  ", mod$name, n)); flush(stdout())
  for (REML in c(TRUE, FALSE)) {
    key <- paste0(mod$name, if (REML) "_reml" else "_ml")
    rec <- list(name = key, model = mod$name, data_set = mod$data, source = ds$pkg,
                data = rel, committed = !big, factors = as.list(factors), nobs = n,
                formula = mod$formula, original_formula = mod$original,
                note = paste(c(ds$note, mod$note), collapse = "; "),
                method = if (REML) "reml" else "ml")
    res <- tryCatch({
      f <- fit_quiet(mod$formula, d, REML, lmerControl())
      rec$default <- extract(f$m, f$warnings)
      rec$time <- time_fit(mod$formula, d, REML, lmerControl(), reps)
      tights <- list()
      t1 <- system.time(f1 <- fit_quiet(mod$formula, d, REML, CTL_TIGHT_NLOPT))[["elapsed"]]
      tights$nloptwrap <- extract(f1$m, f1$warnings); tights$nloptwrap$elapsed <- t1
      if (n <= 50000) {
        t2 <- system.time(f2 <- fit_quiet(mod$formula, d, REML, CTL_TIGHT_BOBYQA))[["elapsed"]]
        tights$bobyqa <- extract(f2$m, f2$warnings); tights$bobyqa$elapsed <- t2
      }
      best <- names(tights)[which.min(sapply(tights, function(x) x$criterion))]
      rec$tight <- tights[[best]]; rec$tight$which <- best
      rec$tight_criteria <- lapply(tights, function(x) x$criterion)
      rec
    }, error = function(e) { rec$error <- conditionMessage(e); rec })
    refs[[key]] <- res
    if (is.null(res$error)) {
      cat(sprintf("%s %.6f (tight %+.2e, %.3f s)  ", if (REML) "REML" else "ML",
                  res$default$criterion, res$tight$criterion - res$default$criterion, res$time$elapsed))
    } else cat(sprintf("%s ERROR %s  ", if (REML) "REML" else "ML", res$error))
    flush(stdout())
  }
  cat("\n")
}

out <- list(
  generated_by = "benchmarks/realdata/export.R",
  R = R.version.string, lme4 = as.character(packageVersion("lme4")),
  nlme = as.character(packageVersion("nlme")), mlmRev = as.character(packageVersion("mlmRev")),
  lmerTest = as.character(packageVersion("lmerTest")), MASS = as.character(packageVersion("MASS")),
  plm = as.character(packageVersion("plm")),
  tight_controls = list(
    nloptwrap = "optimizer nloptwrap, calc.derivs FALSE, xtol_abs 1e-13, ftol_abs 1e-13, xtol_rel 1e-13, ftol_rel 1e-15, maxeval 1e5",
    bobyqa = "optimizer bobyqa, calc.derivs FALSE, rhoend 1e-12, maxfun 1e5 (n <= 50,000 only)",
    tight = "the lower criterion of the two"),
  timing = "default controls; elapsed and CPU (user + system) seconds, median of 7 runs (n < 2,000), 3 (n < 20,000) or 1",
  factor_levels = "C-locale order of the strings; ordered factors made unordered (treatment contrasts)",
  models = refs)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, null = "null", na = "null", pretty = TRUE), out_path)
cat("wrote", out_path, "with", length(refs), "fits\n")
