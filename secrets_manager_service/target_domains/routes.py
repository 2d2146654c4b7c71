"""The target domains' blueprint with every route of the family (importing the view modules adds theirs)."""
from secrets_manager_service.target_domains import account_views, managed_views, views  # noqa: F401 - their routes
from secrets_manager_service.target_domains.views import blp

__all__ = ["blp"]
