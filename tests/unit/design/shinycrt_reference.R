# Reference variances from the Shiny CRT Calculator's engine (Hemming, Kasza, Hooper, Forbes &
# Taljaard 2020; J Kasza's HelperFunctionsJH.R, github karlahemming/Cluster-RCT-Sample-Size-
# Calculator) for tests/unit/design/test_published.py. Its code is not copied here; give the
# path of HelperFunctionsJH.R from a checkout:
#   Rscript tests/unit/design/shinycrt_reference.R path/to/HelperFunctionsJH.R
source(commandArgs(trailingOnly = TRUE)[1])
show <- function(name, x) cat(sprintf("%s %.12g\n", name, x))
# vartheta_m(m, DesType, periods, Krep, icc, cac, iac, sd): exponential decay between periods
show("sw5_decay", vartheta_m(50, "Stepped-wedge", 5, 2, 0.05, 0.7, 0, 1))
show("sw5_decay_cohort", vartheta_m(50, "Stepped-wedge", 5, 2, 0.05, 0.7, 0.4, 1))
show("sw7_decay_sd2", vartheta_m(20, "Stepped-wedge", 7, 3, 0.1, 0.5, 0, 2))
show("parallel_baseline_decay", vartheta_m(100, "Before and After", 2, 5, 0.02, 0.8, 0, 1))
