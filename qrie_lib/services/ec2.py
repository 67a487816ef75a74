"""EC2 collector (placeholder until its module lands)."""

from qrie_lib.services.base import Service

SERVICE = Service(name="ec2", regional=True, kinds=())
