"""The retention stage: the study's deletion rule, and the purge that crypto-shreds the vault.

- `retention_status(study, vault_dir, today=..., packages=..., keys=...) -> RetentionStatus`
- `purge(vault_dir, user, password, study, today=..., certificate_dir=..., early_reason=None,
  packages=None, keys=None) -> PurgeResult` (refuses before the due date without a reason)
"""

from trialvault.retention.purge import PurgeResult, purge, render_certificate
from trialvault.retention.schedule import RetentionStatus, inventory, retention_status

__all__ = ["PurgeResult", "RetentionStatus", "inventory", "purge", "render_certificate",
           "retention_status"]
