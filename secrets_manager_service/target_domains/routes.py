"""The target domains' blueprint with every route of the family (importing the view modules adds theirs:
the domains' first, as scanned.views and managed.views import the blueprint from domains.views)."""
from secrets_manager_service.target_domains.scanned import views as scanned_views  # noqa: F401 - their routes
from secrets_manager_service.target_domains.domains.views import blp
from secrets_manager_service.target_domains.managed import views as managed_views  # noqa: F401 - their routes

__all__ = ["blp"]
