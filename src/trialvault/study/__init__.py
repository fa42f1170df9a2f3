"""The study file: model, loading, and documents (notice, Article 30 record, LIA) generated from it."""

from trialvault.study.load import load_study, parse_study, study_from_json, study_hash, study_json
from trialvault.study.model import StudyFile

__all__ = ["StudyFile", "load_study", "parse_study", "study_from_json", "study_hash", "study_json"]
