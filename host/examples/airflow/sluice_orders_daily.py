"""Airflow DAG: run a sluice pipeline once per day, one partition per logical date.

sluice's exit codes say who has to act, so the task maps them to Airflow's outcomes:

    0  ok (also: this partition was already complete)   -> success
    1  I/O failure worth retrying                         -> AirflowException (retried; the
                                                             rerun resumes after the last
                                                             committed chunk)
    2  usage / configuration error                        -> AirflowFailException (no retry)
    3  a data quality gate failed (nothing published)     -> AirflowFailException
    4  a plugin failed                                    -> AirflowFailException
    5  bad input data                                     -> AirflowFailException

The last stdout line is a JSON summary (rows, digests, gate results); it is returned, so
it lands in XCom for downstream tasks. Logs are JSON lines on stderr (`--log-format
json`), which Airflow's task log shows as they come.

Copy next to your DAGs and set SLUICE_BIN / SLUICE_PIPELINE (or edit the constants).
"""

import json
import os
import subprocess

import pendulum
from airflow.decorators import dag, task
from airflow.exceptions import AirflowException, AirflowFailException

SLUICE = os.environ.get("SLUICE_BIN", "sluice")
PIPELINE = os.environ.get("SLUICE_PIPELINE", "/opt/pipelines/orders/pipeline.toml")

RETRYABLE = {1}
MEANING = {
    2: "usage or configuration error",
    3: "a data quality gate failed; nothing was published",
    4: "a plugin failed",
    5: "bad input data",
}


@dag(
    schedule="@daily",
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=True,  # each day is an idempotent partition: backfilling is safe
    max_active_runs=4,
    default_args={"retries": 3, "retry_delay": pendulum.duration(minutes=5)},
    tags=["sluice"],
)
def sluice_orders_daily():
    @task
    def run_partition(ds=None, run_id=None):
        cmd = [
            SLUICE,
            "--log-format", "json",
            "run", PIPELINE,
            "--partition", ds,      # the logical date: paths, freshness gates
            "--run-id", run_id,     # recorded in the run record, not in the action key
        ]
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
        lines = [l for l in proc.stdout.splitlines() if l.strip()]
        summary = json.loads(lines[-1]) if lines else {}
        if proc.returncode == 0:
            return summary
        if proc.returncode in RETRYABLE:
            raise AirflowException(f"sluice exit 1 (retrying): {summary}")
        meaning = MEANING.get(proc.returncode, "unknown failure")
        raise AirflowFailException(f"sluice exit {proc.returncode}, {meaning}: {summary}")

    run_partition()


sluice_orders_daily()
