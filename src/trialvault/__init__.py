"""trialvault: a privacy-first research data vault and evaluation pipeline for CSC trials."""

__version__ = "0.1.0"
