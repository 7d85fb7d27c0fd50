"""What the tests share that is not a fixture: local servers, tiny models, the test oracle and the repo's paths.

``tests/conftest.py`` puts ``tests/`` on ``sys.path``, so a test imports ``from helpers.serving import ...``.
"""
