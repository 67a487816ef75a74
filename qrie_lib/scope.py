"""Where a launched policy applies: accounts (ids, OU path prefixes, account tags) and regions."""

from __future__ import annotations

from pydantic import Field, field_validator

from qrie_lib.models import GLOBAL, Account, AccountId, Region, Strict


class PolicyScope(Strict):
    """Empty includes mean everywhere; an exclude always wins over an include."""

    include_accounts: list[AccountId] = Field(default_factory=list)
    exclude_accounts: list[AccountId] = Field(default_factory=list)
    include_ou_paths: list[str] = Field(default_factory=list)  # prefixes, e.g. "/root/prod/"
    exclude_ou_paths: list[str] = Field(default_factory=list)
    include_tags: dict[str, str] = Field(default_factory=dict)  # any matching account tag includes
    exclude_tags: dict[str, str] = Field(default_factory=dict)
    regions: list[Region] = Field(default_factory=list)

    @field_validator("include_ou_paths", "exclude_ou_paths")
    @classmethod
    def ou_path(cls, paths: list[str]) -> list[str]:
        for path in paths:
            if not path.startswith("/"):
                raise ValueError(f"OU path {path!r} must start with '/'")
        return paths

    def covers_account(self, account: Account) -> bool:
        if (
            account.account_id in self.exclude_accounts
            or any(account.ou_path.startswith(p) for p in self.exclude_ou_paths)
            or any(account.tags.get(k) == v for k, v in self.exclude_tags.items())
        ):
            return False
        if not (self.include_accounts or self.include_ou_paths or self.include_tags):
            return True
        return (
            account.account_id in self.include_accounts
            or any(account.ou_path.startswith(p) for p in self.include_ou_paths)
            or any(account.tags.get(k) == v for k, v in self.include_tags.items())
        )

    def covers_region(self, region: str) -> bool:
        """Global resources are in every region's scope."""
        return not self.regions or region == GLOBAL or region in self.regions
