"""How pricelens names itself to shops: one product token, in every request it makes."""

from __future__ import annotations

PRODUCT = "pricelens/0.1"
# added to the browser's own user agent (pages and photos), so a shop's logs can tell us
# apart from its visitors and find whom to ask
USER_AGENT_SUFFIX = f"{PRODUCT} (+https://github.com/pricelens/pricelens)"
# for the requests made without a browser (robots.txt)
FETCH_USER_AGENT = f"Mozilla/5.0 (compatible; {USER_AGENT_SUFFIX})"
# the name robots.txt rules are matched against ("User-agent: pricelens")
ROBOTS_NAME = "pricelens"
