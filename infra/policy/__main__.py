"""The dbsync policy pack: ``pulumi preview --policy-pack infra/policy`` runs this file.

Only this file builds the ``PolicyPack``: its constructor starts the analyzer's gRPC server and
never returns. Pulumi runs the pack with ``runpy.run_path`` on this folder, which puts the folder
first on ``sys.path``: ``policies`` is imported as a top-level module here, and as
``infra.policy.policies`` from the tests. Install ``requirements.txt`` into the Python that
pulumi uses first.
"""

# mypy checks this file as infra.policy.__main__, where the folder is not on sys.path.
from policies import POLICIES  # type: ignore[import-not-found]
from pulumi_policy import PolicyPack

PolicyPack(name="dbsync-policies", policies=list(POLICIES))
