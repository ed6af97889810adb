"""Imports every model module so ``Base.metadata`` describes the whole schema (Alembic, tests)."""

from __future__ import annotations

from audit import models as audit_models
from catalog import models as catalog_models
from hub.db import Base
from hub.exchange import models as exchange_models
from hub.identity import models as identity_models
from hub.keys import models as key_models
from hub.webhooks import models as webhook_models
from licences import models as licence_models
from seals import models as seal_models

MODEL_MODULES = (
    identity_models,
    key_models,
    audit_models,
    seal_models,
    licence_models,
    webhook_models,
    catalog_models,
    exchange_models,
)
metadata = Base.metadata
