"""Imports every domain's tables so that ``Base.metadata`` knows them all (migrations, backup)."""

from rhenus.accounts import models as accounts_models
from rhenus.assistant import models as assistant_models
from rhenus.assistant import usage_models as assistant_usage_models
from rhenus.core import audit, jobs
from rhenus.core.db import Base
from rhenus.dataspace.catalogue import models as catalogue_models
from rhenus.dataspace.contracts import models as contracts_models
from rhenus.dataspace.pools import models as pools_models
from rhenus.dataspace.transfers import models as transfers_models
from rhenus.messaging import models as messaging_models
from rhenus.trust import models as trust_models

__all__ = [
    "Base",
    "accounts_models",
    "assistant_models",
    "assistant_usage_models",
    "audit",
    "catalogue_models",
    "contracts_models",
    "jobs",
    "messaging_models",
    "pools_models",
    "transfers_models",
    "trust_models",
]
