"""Deterministic assignment of contacts to arms and methods.

A contact's arm and method must not change between requests, processes or releases, so
they come from a stable hash of (campaign_id, contact_id), never from Python's salted
`hash()` or from the decision's random generator. CRC-32 (C speed, in the standard
library) keys the pair; the splitmix64 finalizer, applied with two different salts, turns
it into two independent uniform numbers: one for the control split, one for routing.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

_SPLIT_SALT = np.uint64(0x9E3779B97F4A7C15)
_ROUTE_SALT = np.uint64(0xD1B54A32D192ED03)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_TWO_POW_53 = float(2**53)


def pair_keys(campaign_ids: Sequence[str], contact_ids: Sequence[str]) -> NDArray[np.uint64]:
    """A 64-bit key per (campaign, contact): CRC-32 of each, combined."""
    seeds: dict[str, int] = {}
    keys = np.empty(len(contact_ids), dtype=np.uint64)
    for i, (campaign, contact) in enumerate(zip(campaign_ids, contact_ids, strict=True)):
        seed = seeds.get(campaign)
        if seed is None:
            seed = seeds[campaign] = zlib.crc32(campaign.encode())
        keys[i] = (seed << 32) | zlib.crc32(contact.encode(), seed)
    return keys


def _splitmix(x: NDArray[np.uint64]) -> NDArray[np.uint64]:
    with np.errstate(over="ignore"):
        z = x.copy()
        z ^= z >> np.uint64(30)
        z *= _M1
        z ^= z >> np.uint64(27)
        z *= _M2
        z ^= z >> np.uint64(31)
    return z


def _unit(keys: NDArray[np.uint64], salt: np.uint64) -> NDArray[np.float64]:
    with np.errstate(over="ignore"):
        mixed = _splitmix(keys + salt)
    return (mixed >> np.uint64(11)).astype(np.float64) / _TWO_POW_53


def split_units(keys: NDArray[np.uint64]) -> NDArray[np.float64]:
    """Uniform [0, 1) per key for the control split."""
    return _unit(keys, _SPLIT_SALT)


def route_units(keys: NDArray[np.uint64]) -> NDArray[np.float64]:
    """Uniform [0, 1) per key for method routing, independent of the split."""
    return _unit(keys, _ROUTE_SALT)
