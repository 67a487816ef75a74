"""IAM collector (placeholder until its module lands)."""

from qrie_lib.services.base import Service

SERVICE = Service(name="iam", regional=False, kinds=())
