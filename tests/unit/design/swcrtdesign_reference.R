# Reference powers from swCRTdesign (Hughes et al., CRAN) for tests/unit/design/test_published.py.
# R and swCRTdesign are tools for these references only, never a runtime or CI dependency:
#   R CMD INSTALL -l LIB swCRTdesign   # from the CRAN source
#   Rscript tests/unit/design/swcrtdesign_reference.R LIB
args <- commandArgs(trailingOnly = TRUE)
if (length(args)) .libPaths(c(args[1], .libPaths()))
suppressMessages(library(swCRTdesign))
show <- function(name, x) cat(sprintf("%s %.12g\n", name, x))
# swPwr help, Examples 1, 2 and 8 (Hussey & Hughes setting: 24 clusters, 4 steps, n = 120).
ex <- function(...) suppressWarnings(swPwr(..., retDATA = TRUE))
e1 <- ex(swDsn(c(6, 6, 6, 6)), distn = "binomial", n = 120, mu0 = 0.05, mu1 = 0.035,
         tau = 0.01, eta = 0, rho = 0, gamma = 0, alpha = 0.05)
show("ex1_power", e1$pwrWLS); show("ex1_var", e1$var.theta.WLS)
e2 <- ex(swDsn(c(6, 6, 6, 6), extra.time = 3), distn = "binomial", n = 120, mu0 = 0.05,
         mu1 = 0.035, tau = 0.01, eta = 0, rho = 0, gamma = 0, alpha = 0.05)
show("ex2_power", e2$pwrWLS); show("ex2_var", e2$var.theta.WLS)
e8 <- ex(swDsn(c(6, 6, 6, 6)), distn = "gaussian", n = 120, mu0 = 0.05, mu1 = 0.035,
         sigma = 0.1, icc = 0.02, cac = 0.125, alpha = 0.05)
show("ex8_power", e8$pwrWLS); show("ex8_var", e8$var.theta.WLS)
# The NWD rollout: 5 LAs stepping at quarters 8, 10, 12, 14, 16 of 24, unequal volumes.
d <- swDsn(c(1, 1, 1, 1, 1))
m <- matrix(0, 5, 24)
for (i in 1:5) m[i, (6 + 2 * i):24] <- 1
d$swDsn <- m; d$swDsn.unique.clusters <- m; d$total.time <- 24
n <- matrix(rep(c(146, 72, 109, 272, 154), 24), nrow = 5)
nwd <- ex(d, distn = "gaussian", n = n, mu0 = 0.08, mu1 = 0.05, sigma = 0.27, icc = 0.01,
          cac = 0.9, alpha = 0.05)
show("nwd_power", nwd$pwrWLS); show("nwd_var", nwd$var.theta.WLS)
