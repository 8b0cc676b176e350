"""``citykpi quality``: the data-quality scorecard (完整·准确·一致·时效) of the warehouse.

- ``tables``  the catalogue's expectations flattened into small frames (pure);
- ``sql``     the constant number of set-based statements over the warehouse;
- ``assess``  :func:`assess` — plan, run, read back, score; returns a :class:`QualityReport`;
- ``report``  the result object and how its figures are scored and grouped.

``citykpi.render.quality`` writes the report in every export format; ``render.terminal.quality``
prints it.
"""

from citykpi.quality.assess import assess, explain
from citykpi.quality.report import BANDS, BY, DIMENSIONS, TABLES, QualityReport

__all__ = ["BANDS", "BY", "DIMENSIONS", "TABLES", "QualityReport", "assess", "explain"]
