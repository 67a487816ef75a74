import pytest

from qrie_lib import policies, services
from qrie_lib.discovery import declared, unique
from qrie_lib.policies.registry import CATALOGUE
from qrie_lib.services.registry import SERVICES


def test_every_module_that_declares_a_service_is_registered() -> None:
    assert {svc.name for svc in declared(services, "SERVICE")} == set(SERVICES)
    assert sum(len(p) for p in declared(policies, "POLICIES")) == len(CATALOGUE)


def test_an_entry_declared_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="service 's3' is declared twice"):
        unique([SERVICES["s3"], SERVICES["s3"]], lambda svc: svc.name, "service")


def test_the_readme_names_every_service_an_inventory_accepts() -> None:
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    line = next(line for line in readme.splitlines() if line.startswith("| inventory |"))
    assert all(f"`{name}`" in line for name in SERVICES)
