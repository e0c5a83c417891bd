"""Imports every model module so Base.metadata knows every table (for Alembic)."""

from gureum import outbox as outbox_models  # noqa: F401
from gureum.compute import models as compute_models  # noqa: F401
from gureum.console import models as console_models  # noqa: F401
from gureum.db import locks as lock_models  # noqa: F401
from gureum.identity import models as identity_models  # noqa: F401
from gureum.image import models as image_models  # noqa: F401
from gureum.network import l3_models as network_l3_models  # noqa: F401
from gureum.network import models as network_models  # noqa: F401
from gureum.volume import models as volume_models  # noqa: F401
