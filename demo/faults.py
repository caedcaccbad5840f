"""Fault switches for the demo mall, each with a rate, alone or together.

HTTP faults hit requests: the k-th request for a path fails or not by a hash of (seed, fault,
path, k), so a retry can succeed and every run fails the same way. Content faults hit offers
(by SKU), so the answer key can say which offers carry a broken price or photo.

Spec syntax: ``"http500=0.1,slow=0.05,bad_price=0.1"``; ``all=R`` sets every fault to R.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass, field

HTTP_FAULTS = ("slow", "http500", "http503", "http429", "drop", "truncate")
OFFER_FAULTS = ("bad_price", "missing_price", "corrupt_image", "bomb_image")
PAGE_FAULTS = ("js_error", "hang", "endless_scroll", "modal_reappears")
FAULTS = HTTP_FAULTS + OFFER_FAULTS + PAGE_FAULTS


class FaultSpecError(ValueError):
    """A --faults value names an unknown fault or a rate outside 0..1."""


@dataclass(frozen=True)
class FaultPlan:
    rates: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    slow_seconds: float = 1.5

    @classmethod
    def parse(cls, spec: str | None, seed: int = 0) -> FaultPlan:
        rates: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in (spec or "").split(","))):
            name, _, value = part.partition("=")
            name = name.strip()
            try:
                rate = float(value) if value else 1.0
            except ValueError:
                raise FaultSpecError(f"fault {name!r}: rate {value!r} is not a number") from None
            if not 0 <= rate <= 1:
                raise FaultSpecError(f"fault {name!r}: rate {rate} is outside 0..1")
            if name == "all":
                rates.update(dict.fromkeys(FAULTS, rate))
            elif name in FAULTS:
                rates[name] = rate
            else:
                raise FaultSpecError(f"unknown fault {name!r}; known: {', '.join(FAULTS)}")
        return cls(rates, seed)

    def __str__(self) -> str:
        return ",".join(f"{name}={rate:g}" for name, rate in sorted(self.rates.items()))

    def on(self, fault: str) -> bool:
        return self.rates.get(fault, 0.0) > 0

    def hits(self, fault: str, *key) -> bool:
        rate = self.rates.get(fault, 0.0)
        if rate <= 0:
            return False
        return rate >= 1 or random.Random(f"{self.seed}:{fault}:{key}").random() < rate

    def offer_faults(self, shop: str, sku: str) -> tuple[str, ...]:
        """Content faults of one offer; a price is either malformed or missing, not both."""
        found = [f for f in OFFER_FAULTS if self.hits(f, shop, sku)]
        if "bad_price" in found and "missing_price" in found:
            found.remove("missing_price")
        if "corrupt_image" in found and "bomb_image" in found:
            found.remove("bomb_image")
        return tuple(found)

    def http_fault(self, shop: str, path: str, attempt: int) -> str | None:
        for fault in HTTP_FAULTS:
            if self.hits(fault, shop, path, attempt):
                return fault
        return None


NO_FAULTS = FaultPlan()


class AttemptCounter:
    """How many times each path was requested; shared by a shop server's threads."""

    def __init__(self):
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def next(self, path: str) -> int:
        with self._lock:
            self._counts[path] += 1
            return self._counts[path] - 1
