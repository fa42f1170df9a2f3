# Reference results for trialvault's small-sample inference (R 4.2, Debian packages
# r-base-core r-cran-lmertest r-cran-pbkrtest r-cran-clubsandwich). R is a tool for these
# references only, never a runtime or CI dependency.
#
#   python tests/reference/make_datasets.py && Rscript tests/reference/small_sample.R
#
# Writes small_sample_reference.csv: one row per dataset x method with estimate, se and df.
suppressMessages({library(lme4); library(lmerTest); library(pbkrtest); library(clubSandwich)})
here <- dirname(sub("--file=", "", grep("--file=", commandArgs(FALSE), value = TRUE)))
out <- list()
add <- function(...) out[[length(out) + 1]] <<- data.frame(...)
for (seed in 1:3) {
  d <- read.csv(file.path(here, "data", sprintf("sw_seed%d.csv", seed)))
  name <- sprintf("sw_seed%d", seed)
  # Immediate-effect Hussey & Hughes LPM, LA and period fixed effects, CR2 + Satterthwaite df.
  fit <- lm(y ~ exposed + factor(la) + factor(period) + x1, data = d)
  ct <- coef_test(fit, vcov = "CR2", cluster = d$la, test = "Satterthwaite", coefs = "exposed")
  add(dataset = name, method = "cr2_immediate", estimate = ct$beta, se = ct$SE, df = ct$df_Satt)
  # Same with weights (WLS, clubSandwich's inverse-variance working model).
  wfit <- lm(y ~ exposed + factor(la) + factor(period) + x1, data = d, weights = w)
  wt <- coef_test(wfit, vcov = "CR2", cluster = d$la, test = "Satterthwaite", coefs = "exposed")
  add(dataset = name, method = "cr2_weighted", estimate = wt$beta, se = wt$SE, df = wt$df_Satt)
  # Exposure-time model: one effect per exposure time 1..4, averaged with the exposed shares.
  efit <- lm(y ~ factor(ket) + factor(la) + factor(period) + x1, data = d)
  shares <- as.numeric(table(d$ket[d$ket > 0])) / sum(d$ket > 0)
  L <- matrix(0, nrow = 1, ncol = length(coef(efit)))
  L[1, match(paste0("factor(ket)", 1:4), names(coef(efit)))] <- shares
  lc <- linear_contrast(efit, vcov = "CR2", cluster = d$la, contrasts = L,
                        test = "Satterthwaite")
  add(dataset = name, method = "cr2_exposure_time", estimate = lc$Est, se = lc$SE,
      df = lc$df)
  # Nested exchangeable mixed model (random LA and LA x period), REML.
  m <- lmer(y ~ exposed + factor(period) + x1 + (1 | la) + (1 | la:period), data = d,
            REML = TRUE)
  s <- summary(m, ddf = "Satterthwaite")$coefficients["exposed", ]
  add(dataset = name, method = "lmm_satterthwaite", estimate = s[["Estimate"]],
      se = s[["Std. Error"]], df = s[["df"]])
  L2 <- matrix(0, nrow = 1, ncol = length(fixef(m)))
  L2[1, which(names(fixef(m)) == "exposed")] <- 1
  kr <- contest(m, L2, ddf = "Kenward-Roger", joint = FALSE)
  add(dataset = name, method = "lmm_kenward_roger", estimate = kr$Estimate,
      se = kr$`Std. Error`, df = kr$df)
  vc <- as.data.frame(VarCorr(m))
  add(dataset = name, method = "lmm_var_cluster", estimate = vc$vcov[vc$grp == "la"], se = NA,
      df = NA)
  add(dataset = name, method = "lmm_var_cluster_period",
      estimate = vc$vcov[vc$grp == "la:period"], se = NA, df = NA)
  add(dataset = name, method = "lmm_var_residual", estimate = vc$vcov[vc$grp == "Residual"],
      se = NA, df = NA)
}
res <- do.call(rbind, out)
write.csv(res, file.path(here, "small_sample_reference.csv"), row.names = FALSE)
cat(sprintf("R %s, lme4 %s, lmerTest %s, pbkrtest %s, clubSandwich %s\n",
            getRversion(), packageVersion("lme4"), packageVersion("lmerTest"),
            packageVersion("pbkrtest"), packageVersion("clubSandwich")))
print(res, digits = 10)
