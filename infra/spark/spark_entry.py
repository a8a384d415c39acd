"""The EMR Serverless entry point of a batch-profiling job: upload it to s3://<bucket>/spark/ (output spark_code_uri).

It runs ``pipeline.engine.spark_job`` with the job run's arguments, which ``pipeline spark-job-args`` prints on
the host.
The ``pipeline`` package comes with the job's Python environment (``spark.archives``, see infra/README.md).
"""

from pipeline.engine.spark_job import main

raise SystemExit(main())
