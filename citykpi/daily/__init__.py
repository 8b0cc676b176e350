"""The daily job's parts that are not evaluation: its exit contract, log, clock, inboxes and report.

- ``config``  the configuration file (``RunConfig``) and the output paths a run may write;
- ``steps``   the job's steps on a ``Job`` (ingest, assess the data, alerts, notify, export, dry run);
- ``result``  what a run did (``RunResult``);
- ``health``  health states and exit codes (the one registry the docs' table is generated from);
- ``log``     the run log: time stamp, level and run id on each line, text or JSON;
- ``clock``   "now" and the city's time zone;
- ``inbox``   which inbox files are ready, which wait (still being written), which are not data;
- ``report``  the JSON run report;
- ``check``   ``run --check-config``.

``citykpi.cron`` wires them into ``citykpi run``.
"""
