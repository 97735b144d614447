"""The dated price table and usage assumptions shipped with the package (prices.yaml)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

PRICES_FILE = Path(__file__).with_name("prices.yaml")


@dataclass(frozen=True)
class PriceTable:
    as_of: str
    region: str
    currency: str
    hours_per_month: float
    sources: dict[str, str]
    prices: dict[str, dict]
    usage: dict[str, float]

    def price(self, service: str, name: str) -> float:
        return float(self.prices[service][name])

    def lookup(self, service: str, table: str, key: str) -> float | None:
        """A per-type price (a broker or node type); None when the table does not list it."""
        value = self.prices[service][table].get(key)
        return None if value is None else float(value)

    def source(self, service: str) -> str:
        return self.sources[service]

    def with_usage(self, **overrides: float) -> PriceTable:
        """The same prices with some usage assumptions changed (for what-if estimates and tests)."""
        unknown = set(overrides) - set(self.usage)
        if unknown:
            raise KeyError(f"unknown usage assumptions: {', '.join(sorted(unknown))}")
        return PriceTable(self.as_of, self.region, self.currency, self.hours_per_month, self.sources,
                          self.prices, {**self.usage, **overrides})


@cache
def load_prices(path: Path = PRICES_FILE) -> PriceTable:
    """Read prices.yaml once per process."""
    data = yaml.safe_load(path.read_text())
    return PriceTable(as_of=str(data["as_of"]), region=data["region"], currency=data["currency"],
                      hours_per_month=float(data["hours_per_month"]), sources=dict(data["sources"]),
                      prices=data["prices"], usage={k: float(v) for k, v in data["usage"].items()})
