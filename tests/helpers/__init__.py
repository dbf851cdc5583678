"""Set-up shared by the tests of one area, beyond the fixtures every test has (``tests/conftest.py``).

``governance``, ``vehicles`` and ``parts`` (parts and recalls) build a staffed consortium and read
its state over a MemoryLedger; ``network`` runs a real consortium network; ``reports`` is the pytest
plugin behind the report tests (``pytest_plugins = ["helpers.reports"]``). Importable as
``helpers.*`` because pytest puts ``tests/`` on the path (``pythonpath`` in pyproject.toml).
"""
