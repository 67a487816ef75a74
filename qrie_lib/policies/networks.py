"""Address-space arithmetic shared by network rules and policy conditions: whether a set of CIDR
ranges, taken together, admits every IPv4 (or IPv6) address. ``0.0.0.0/1`` plus ``128.0.0.0/1`` is
as open as ``0.0.0.0/0`` — AWS evaluates the union — so "open to the world" is a set property."""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Network, IPv6Network, collapse_addresses, ip_network

WORLD = {4: IPv4Network("0.0.0.0/0"), 6: IPv6Network("::/0")}


def networks(cidrs: Iterable[object]) -> list[IPv4Network | IPv6Network]:
    """The valid CIDRs among ``cidrs`` (host bits allowed, as AWS normalises them); others dropped."""
    found = []
    for cidr in cidrs:
        try:
            found.append(ip_network(str(cidr).strip(), strict=False))
        except ValueError:
            continue
    return found


def world_families(cidrs: Iterable[object]) -> set[int]:
    """The IP versions (4, 6) whose whole address space ``cidrs`` jointly cover."""
    parsed = networks(cidrs)
    return {
        version
        for version, world in WORLD.items()
        if list(collapse_addresses(n for n in parsed if n.version == version)) == [world]
    }
