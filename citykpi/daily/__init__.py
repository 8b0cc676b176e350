"""The daily job's parts that are not evaluation: its exit contract, log, clock, inboxes and report.

- ``health``  health states and exit codes (the one registry the docs' table is generated from);
- ``log``     the run log: time stamp, level and run id on each line, text or JSON;
- ``clock``   "now" and the city's time zone;
- ``inbox``   which inbox files are ready, which wait (still being written), which are not data;
- ``report``  the JSON run report.

``citykpi.cron`` wires them into ``citykpi run``.
"""
