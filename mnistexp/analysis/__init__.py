"""Reading finished runs and comparing them: run folders as records (``rundirs``), the metric
columns (``columns``), the statistics of seeds and differences (``stats``), grouping and tests
(``compare``), the tables in every format (``report``), the figures (``plots``) and the
self-contained HTML page (``htmlpage``).
"""
