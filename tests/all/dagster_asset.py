"""Materialize a Dagster asset that runs `sluice run PIPELINE` through Dagster Pipes.

Used by tests/all/dagster.rs:  python3 dagster_asset.py SLUICE PIPELINE PARTITION CHECKS
(CHECKS: comma-separated Dagster check names the asset declares, one per quality gate).
Prints one JSON object: success, the materialization's metadata and data version, the check
evaluations, and the step's error message when it failed.
"""

import json
import sys

import dagster as dg

sluice, pipeline, partition, checks = sys.argv[1:5]


@dg.asset(
    name="orders_daily",
    partitions_def=dg.DailyPartitionsDefinition(start_date="2026-11-01"),
    check_specs=[dg.AssetCheckSpec(c, asset="orders_daily") for c in checks.split(",") if c],
)
def orders_daily(context: dg.AssetExecutionContext, pipes: dg.PipesSubprocessClient):
    return pipes.run(
        command=[sluice, "--log-format", "json", "run", pipeline, "--allow-unpinned"],
        context=context,
    ).get_materialize_result()


result = dg.materialize(
    [orders_daily],
    partition_key=partition,
    resources={"pipes": dg.PipesSubprocessClient()},
    raise_on_error=False,
)
out = {"success": result.success, "materializations": [], "checks": [], "errors": []}
for mat in result.asset_materializations_for_node("orders_daily"):
    out["materializations"].append(
        {
            "asset_key": mat.asset_key.to_user_string(),
            "partition": mat.partition,
            "metadata": {k: v.value for k, v in mat.metadata.items()},
            "tags": dict(mat.tags or {}),
        }
    )
for e in result.get_asset_check_evaluations():
    out["checks"].append({"name": e.check_name, "passed": e.passed, "severity": e.severity.value})
for e in result.get_step_failure_events():
    out["errors"].append(e.step_failure_data.error.to_string())
print(json.dumps(out, default=str))
