"""The semantic checks over a parsed topology, by theme; `model.validate.check` runs them
all in one order."""

from .addressing import check_addresses, check_planes
from .identity import (
    check_asns,
    check_endpoints,
    check_keys,
    check_lab,
    check_names,
    check_peerings,
)
from .policy import MESH_SESSIONS_HINT, check_exits, check_lints, check_policy
from .prefixes import PrefixOwners, check_prefixes, covering, reach_targets
from .secrets import check_secrets, secrets_in_text

__all__ = ["MESH_SESSIONS_HINT", "PrefixOwners", "check_addresses", "check_asns",
           "check_endpoints", "check_exits", "check_keys", "check_lab", "check_lints",
           "check_names", "check_peerings", "check_planes", "check_policy", "check_prefixes",
           "check_secrets", "covering", "reach_targets", "secrets_in_text"]
