"""The routing policies' tiers as both selection paths name them (the request log's `routing` column),
strongest first, and the reset granularity of the earlier-reset preference. Shared by pool_table's
array path and open_order's walk, so both say the same."""

from .policies import BURN_FIRST

PRESERVE_FLOOR = "preserve_floor"
BURN = BURN_FIRST
EARLIER_RESET = "earlier_reset"
HEADROOM = "headroom"
# Resets this close together count as the same moment, so the strategy still spreads among them.
RESET_GRANULARITY_S = 300.0
