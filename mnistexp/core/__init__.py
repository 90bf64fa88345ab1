"""The vocabulary every layer shares, importing nothing else from mnistexp.

Errors and exit codes (``errors``), input limits (``limits``), the one bounded reader
(``bounded``) and the one atomic writer (``atomic``), path checks (``paths``), YAML reading and
quoting (``yamlio``), the parameter declarations (``params``), the typed config sections
(``schema``) and the states of a run (``states``).
"""
