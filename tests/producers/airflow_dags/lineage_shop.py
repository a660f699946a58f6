"""A DAG of three tasks for the producers suite: two that succeed and one that fails with a known message.

Run with ``airflow dags test lineage_shop``; the OpenLineage provider sends each task's START and COMPLETE or
FAIL, with the DAG run as the parent of every task run.
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

FAILURE_MESSAGE = "lineage_shop: the warehouse refused the load (expected by the producers suite)"


def extract() -> int:
    return 3


def transform() -> int:
    return 6


def load() -> None:
    raise RuntimeError(FAILURE_MESSAGE)


with DAG(dag_id="lineage_shop", start_date=datetime(2026, 1, 1), schedule=None, catchup=False) as dag:
    extract_task = PythonOperator(task_id="extract", python_callable=extract)
    transform_task = PythonOperator(task_id="transform", python_callable=transform)
    load_task = PythonOperator(task_id="load", python_callable=load)
    extract_task >> transform_task >> load_task
